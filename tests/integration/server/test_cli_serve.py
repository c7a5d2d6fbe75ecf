"""`cf-llama2 serve` on the embedded int8 model, driven with curl as the README shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from .conftest import TOKEN

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[3] / "README.md"
DEFAULT_PORT = "8787"
STARTUP_LINES = 50


def _curl_commands(markdown: str) -> list[str]:
    """The ``curl ... /ai/run/...`` commands of the README's shell code blocks."""
    commands: list[str] = []
    lang: str | None = None  # the open block's language; None outside blocks
    body: list[str] = []
    for line in markdown.splitlines():
        if not line.startswith("```"):
            if lang is not None:
                body.append(line)
            continue
        if lang is None:
            lang, body = line[3:].strip(), []
            continue
        if lang in ("", "bash", "sh", "shell", "console"):
            joined = re.sub(r"\\\n\s*", " ", "\n".join(body))
            for command in joined.splitlines():
                command = command.strip().removeprefix("$ ")
                if command.startswith("curl ") and "/ai/run/" in command:
                    commands.append(command)
        lang = None
    return commands


class Served:
    def __init__(self, process: subprocess.Popen[str], base_url: str, stderr: IO[str]) -> None:
        self.process = process
        self.base_url = base_url
        self.stderr = stderr
        self.port = base_url.split(":")[2].split("/")[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {**os.environ, "CF_LLAMA2_SERVER_TOKEN": TOKEN}
    log = (tmp_path_factory.mktemp("serve") / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "cf_llama2.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    base_url = ""
    for _ in range(STARTUP_LINES):
        line = process.stdout.readline()
        if not line:
            break
        match = re.search(r"Serving .* on (http://\S+/client/v4)", line)
        if match:
            base_url = match.group(1)
            break
    if not base_url:
        process.kill()
        process.wait()
        log.seek(0)
        pytest.fail(f"cf-llama2 serve did not start:\n{log.read()[-3000:]}")
    handle = Served(process, base_url, log)
    yield handle
    if process.poll() is None:
        process.kill()
        process.wait()
    process.stdout.close()
    log.close()


def _curl(command: str, port: str) -> Any:
    command = command.replace(f":{DEFAULT_PORT}/", f":{port}/")
    env = {**os.environ, "CF_LLAMA2_SERVER_TOKEN": TOKEN}
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_examples_get_workers_ai_answers(served: Served) -> None:
    if not README.is_file():
        pytest.skip("README.md is not written yet")
    commands = _curl_commands(README.read_text(encoding="utf-8"))
    assert commands, "README.md has no curl example of /ai/run/"
    for command in commands:
        out = _curl(command, served.port)
        if '"stream": true' in command or '"stream":true' in command:
            assert out.rstrip().endswith("data: [DONE]"), out
            continue
        body = json.loads(out)
        assert body["success"] is True, body
        result = body["result"]
        assert result["response"] or result.get("tool_calls")
        assert result["usage"]["total_tokens"] > 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_tool_call_and_stream(served: Served) -> None:
    url = f"{served.base_url}/accounts/local/ai/run/@cf/meta/llama-2-7b-chat-int8"
    tools = [
        {
            "name": "get_weather",
            "description": "Get the weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    body = {
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": tools,
        "max_tokens": 64,
    }
    options = json.dumps({"tool_choice": "get_weather"})
    out = _curl(
        f"curl -s {url} -H 'Authorization: Bearer {TOKEN}' "
        f"-H 'cf-llama2-options: {options}' -d '{json.dumps(body)}'",
        served.port,
    )
    result = json.loads(out)["result"]
    (call,) = result["tool_calls"]
    assert call["name"] == "get_weather"
    assert isinstance(call["arguments"]["city"], str)
    out = _curl(
        f"curl -sN {url} -H 'Authorization: Bearer {TOKEN}' "
        """-d '{"prompt": "Say hello.", "stream": true, "max_tokens": 8}'""",
        served.port,
    )
    events = [line.removeprefix("data: ") for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "usage" in json.loads(events[-2])
    out = _curl(f'curl -s {url} -d \'{{"prompt": "hi"}}\'', served.port)
    assert json.loads(out)["errors"][0]["code"] == 10000


def test_ctrl_c_stops_the_server_cleanly(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=120) == 0
    assert served.process.stdout is not None
    assert "Server stopped" in served.process.stdout.read()
