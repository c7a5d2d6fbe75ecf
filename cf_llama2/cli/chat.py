"""``cf-llama2 chat``: ask one question and print the answer, tool calls and usage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from ..backends.base import Backend
from ..schema import ChatRequest, ChatResult, InvalidToolCall, ToolCall
from ..schema.reducer import StreamReducer
from ._common import EXIT_OK, UsageError, float_arg, non_negative_int, positive_int

__all__ = ["LOCAL_DEFAULTS", "add_chat_command"]

LOCAL_DEFAULTS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 128}
"""What ``--backend local`` asks for unless told otherwise: greedy decoding (a small model
sampled at Workers AI's default temperature 0.6 drifts into nonsense) and a short budget."""


def add_chat_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``chat`` on the subcommand set of the ``cf-llama2`` parser."""
    chat = commands.add_parser(
        "chat",
        help="ask one question and print the answer, tool calls and usage",
        description=(
            "Ask one question. The remote backend reads CLOUDFLARE_ACCOUNT_ID and "
            "CLOUDFLARE_API_TOKEN (or CF_ACCOUNT_ID and CF_AI_API_TOKEN)."
        ),
    )
    chat.add_argument("question", help="the user message")
    chat.add_argument(
        "--backend",
        choices=["local", "remote"],
        default="local",
        help="where the model runs (default %(default)s)",
    )
    chat.add_argument(
        "--model",
        default=None,
        help="remote: a Workers AI model id; local: a model directory or hub id "
        "(default: the embedded int8 model)",
    )
    chat.add_argument("--system", default=None, help="a system message")
    chat.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    chat.add_argument(
        "--tools", type=Path, default=None, metavar="FILE.json", help="a JSON list of tools"
    )
    chat.add_argument(
        "--tool-choice",
        default="auto",
        metavar="auto|none|required|NAME",
        help="whether and which tool must be called (default %(default)s)",
    )
    chat.add_argument(
        "--json", action="store_true", help="print JSON (one line per event with --stream)"
    )
    chat.add_argument(
        "--max-tokens",
        type=positive_int,
        default=None,
        help="answer length limit (default: 128 local, Workers AI's 256 remote)",
    )
    chat.add_argument(
        "--temperature",
        type=float_arg,
        default=None,
        help="0..5; 0 is greedy (default: 0 local, Workers AI's 0.6 remote)",
    )
    chat.add_argument("--seed", type=positive_int, default=None, help="1..9999999999")
    chat.add_argument("--base-url", default=None, help="remote: API root (e.g. a local server)")
    chat.add_argument("--account-id", default=None, help="remote: the account id")
    chat.add_argument(
        "--threads",
        type=non_negative_int,
        default=None,
        help="local: CPU threads for the model (default: by model size, 1 for the embedded "
        "model; 0: torch's own setting)",
    )
    chat.set_defaults(handler=_cmd_chat)


def _load_tools(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--tools {path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--tools {path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "expected a list of tools"
        ) from None
    if isinstance(data, dict):
        data = data.get("tools", [data])
    if not isinstance(data, list) or not data:
        raise UsageError(f"--tools {path}: expected a non-empty JSON list of tools")
    return data


def _chat_request(args: argparse.Namespace) -> ChatRequest:
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.question})
    fields: dict[str, Any] = {"messages": messages, "stream": bool(args.stream)}
    if args.tools is not None:
        fields["tools"] = _load_tools(args.tools)
    if args.tool_choice != "auto":
        fields["tool_choice"] = args.tool_choice
    if args.backend == "local":
        fields.update(LOCAL_DEFAULTS)
    for name in ("max_tokens", "temperature", "seed"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    return ChatRequest(**fields)


def _chat_backend(args: argparse.Namespace) -> Backend:
    if args.backend == "remote":
        from ..backends.remote import RemoteBackend

        if args.threads is not None:
            raise UsageError("--threads applies to --backend local only")
        return RemoteBackend(account_id=args.account_id, model=args.model, base_url=args.base_url)
    if args.base_url is not None or args.account_id is not None:
        raise UsageError("--base-url and --account-id apply to --backend remote only")
    from ..backends.local import LocalBackend

    return LocalBackend(args.model, num_threads=args.threads)


def _call_line(call: ToolCall | InvalidToolCall) -> str:
    if isinstance(call, ToolCall):
        return f"[tool call] {call.name} {json.dumps(call.arguments, ensure_ascii=False)}"
    return f"[invalid tool call] {call.name or '?'} {call.arguments!r}: {call.error}"


def _print_tail(result: ChatResult, out: TextIO) -> None:
    calls: list[ToolCall | InvalidToolCall] = [*result.tool_calls, *result.invalid_tool_calls]
    for call in calls:
        print(_call_line(call), file=out)
    usage = result.usage
    counts = (
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
        f"{usage.total_tokens} tokens"
        if usage is not None
        else "not reported"
    )
    print(f"[usage] {counts}; finish_reason={result.finish_reason}", file=out)


def _stream_events(backend: Backend, request: ChatRequest, as_json: bool, out: TextIO) -> None:
    reducer = StreamReducer(model=backend.info.model if not as_json else "")
    wrote_text = False
    for event in backend.stream(request):
        reducer.feed(event)
        if as_json:
            print(event.model_dump_json(), file=out, flush=True)
        elif event.type == "text":
            out.write(event.text)
            out.flush()
            wrote_text = wrote_text or bool(event.text)
    result = reducer.result()
    if not as_json:
        if wrote_text:
            print(file=out)
        _print_tail(result, out)


def _cmd_chat(args: argparse.Namespace, out: TextIO) -> int:
    request = _chat_request(args)
    backend = _chat_backend(args)
    try:
        if args.stream:
            _stream_events(backend, request, args.json, out)
            return EXIT_OK
        result = backend.run(request)
        if args.json:
            print(result.model_dump_json(indent=2), file=out)
        else:
            if result.response:
                print(result.response, file=out)
            _print_tail(result, out)
        return EXIT_OK
    finally:
        backend.close()
