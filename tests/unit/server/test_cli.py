"""The cf-llama2 command line: help, input errors, and chat against a server on loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cf_llama2.cli import build_parser, main, parse_model_mappings
from cf_llama2.schema import EndEvent, TextDelta, ToolCallDelta, Usage, UsageEvent
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import ScriptedBackend, tool_call

from .conftest import TOKEN

CREDENTIAL_ENV = (
    "CLOUDFLARE_ACCOUNT_ID",
    "CF_ACCOUNT_ID",
    "CLOUDFLARE_API_TOKEN",
    "CF_AI_API_TOKEN",
)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def server(backend: ScriptedBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerHandle]:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "local-account")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    with serve_in_thread(backend, api_token=TOKEN) as handle:
        yield handle


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def remote(server: ServerHandle, *argv: str) -> tuple[int, str]:
    return run("chat", *argv, "--backend", "remote", "--base-url", server.base_url)


@pytest.mark.parametrize("command", [[], ["serve"], ["chat"], ["prepare"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: cf-llama2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required"),
        (["nonsense"], "invalid choice"),
        (["serve", "--port", "70000"], "0..65535"),
        (["serve", "--max-queue", "-1"], ">= 0"),
        (["chat"], "question"),
        (["chat", "hi", "--max-tokens", "0"], ">= 1"),
        (["chat", "hi", "--temperature", "warm"], "number"),
        (["chat", "hi", "--backend", "cloud"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_model_mappings() -> None:
    default = "@cf/meta/llama-2-7b-chat-int8"
    assert parse_model_mappings([]) == {default: None}
    assert parse_model_mappings(["my/llama=/models/llama"]) == {
        "my/llama": "/models/llama",
        default: None,
    }
    assert parse_model_mappings(["meta-llama/Llama-2-7b-chat-hf"]) == {
        default: "meta-llama/Llama-2-7b-chat-hf"
    }
    with pytest.raises(ValueError, match="twice"):
        parse_model_mappings(["a=x", "a=y"])
    with pytest.raises(ValueError, match="NAME=PATH_OR_ID"):
        parse_model_mappings(["a="])


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_queue) == ("127.0.0.1", 8787, 32)


def test_chat_prints_text_and_usage(server: ServerHandle, backend: ScriptedBackend) -> None:
    backend.add("Paris is the capital.")
    code, out = remote(server, "Capital of France?", "--max-tokens", "20", "--seed", "7")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Paris is the capital."
    assert lines[-1] == "[usage] 10 prompt + 4 completion = 14 tokens; finish_reason=stop"
    (request,) = backend.requests
    assert request.max_tokens == 20
    assert request.seed == 7


def test_chat_tool_call_with_tools_file(
    server: ServerHandle, backend: ScriptedBackend, tmp_path: Path
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    path = tmp_path / "tools.json"
    path.write_text(json.dumps(tools))
    backend.add(tool_call("get_weather", city="Paris"))
    code, out = remote(server, "Weather?", "--tools", str(path), "--tool-choice", "get_weather")
    assert code == 0, out
    assert '[tool call] get_weather {"city": "Paris"}' in out
    assert "finish_reason=tool_calls" in out
    (request,) = backend.requests
    assert request.tool_choice == "get_weather"  # type: ignore[union-attr]


def test_chat_json(server: ServerHandle, backend: ScriptedBackend) -> None:
    backend.add("Hello there")
    code, out = remote(server, "hi", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["response"] == "Hello there"
    assert data["usage"]["total_tokens"] == 12


def test_chat_stream(server: ServerHandle, backend: ScriptedBackend) -> None:
    backend.add(
        [
            TextDelta(text="Checking "),
            ToolCallDelta(index=0, id="c1", name="f", arguments='{"x": 1}'),
            UsageEvent(usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)),
            EndEvent(finish_reason="tool_calls"),
        ]
    )
    code, out = remote(server, "hi", "--stream")
    assert code == 0
    assert out.splitlines() == [
        "Checking ",
        '[tool call] f {"x": 1}',
        "[usage] 3 prompt + 4 completion = 7 tokens; finish_reason=tool_calls",
    ]


def test_chat_stream_json_prints_events(server: ServerHandle, backend: ScriptedBackend) -> None:
    backend.add("one two")
    code, out = remote(server, "hi", "--stream", "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["text", "text", "usage", "end"]
    assert "".join(e["text"] for e in events if e["type"] == "text") == "one two"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{oops", "not JSON"), ("[]", "non-empty JSON list")],
)
def test_bad_tools_file_exits_2(
    server: ServerHandle,
    tmp_path: Path,
    content: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "tools.json"
    if content is not None:
        path.write_text(content)
    code, _ = remote(server, "hi", "--tools", str(path))
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_tool_choice_without_tools_exits_2(
    server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = remote(server, "hi", "--tool-choice", "required")
    assert code == 2
    assert "tool_choice" in capsys.readouterr().err


def test_service_error_exits_1(
    server: ServerHandle, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong")
    code, _ = remote(server, "hi")
    assert code == 1
    err = capsys.readouterr().err
    assert "10000" in err
    assert "wrong" not in err


def test_remote_without_credentials_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    code, _ = run("chat", "hi", "--backend", "remote", "--base-url", "http://127.0.0.1:9/client/v4")
    assert code == 2
    assert "CLOUDFLARE_API_TOKEN" in capsys.readouterr().err


def test_base_url_with_local_backend_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("chat", "hi", "--base-url", "http://127.0.0.1:9/client/v4")
    assert code == 2
    assert "--backend remote" in capsys.readouterr().err


def test_serve_on_a_busy_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(ScriptedBackend()) as busy:
        code, _ = run("serve", "--lazy", "--port", str(busy.port))
    assert code == 2
    assert "cannot listen" in capsys.readouterr().err


def test_local_chat_defaults_to_greedy_and_a_short_budget() -> None:
    from cf_llama2.cli.chat import _chat_request

    parser = build_parser()
    local = _chat_request(parser.parse_args(["chat", "Capital of France?"]))
    assert (local.temperature, local.max_tokens) == (0.0, 128)
    told = _chat_request(
        parser.parse_args(["chat", "q", "--temperature", "0.7", "--max-tokens", "9"])
    )
    assert (told.temperature, told.max_tokens) == (0.7, 9)
    remote = _chat_request(parser.parse_args(["chat", "q", "--backend", "remote"]))
    assert "temperature" not in remote.model_fields_set
    assert "max_tokens" not in remote.model_fields_set


def test_threads_option_reaches_the_local_backend() -> None:
    from cf_llama2.cli.chat import _chat_backend

    parser = build_parser()
    backend = _chat_backend(parser.parse_args(["chat", "q", "--threads", "3"]))
    assert backend._num_threads == 3  # type: ignore[attr-defined]
    assert parser.parse_args(["serve", "--threads", "2"]).threads == 2
    code, _ = run("chat", "q", "--backend", "remote", "--threads", "2")
    assert code == 2
