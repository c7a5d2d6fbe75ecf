"""``cf-llama2 serve``: serve local models over the Workers AI (and OpenAI-compatible) HTTP API."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from ..backends.base import Backend
from ..backends.local.backend import DEFAULT_MAX_BATCH_SIZE
from ._common import (
    DEFAULT_PORT,
    DEFAULT_SERVED_MODEL,
    EXIT_OK,
    SERVER_TOKEN_ENV,
    UsageError,
    float_arg,
    non_negative_int,
    port,
    positive_int,
)
from ._limits import add_limit_arguments, connection_limits
from ._token import TokenSource, resolve_token

__all__ = ["add_serve_command", "parse_lora_mappings", "parse_model_mappings"]


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` on the subcommand set of the ``cf-llama2`` parser."""
    serve = commands.add_parser(
        "serve",
        help="serve local models over the Workers AI HTTP API",
        description=(
            "Serve local models with the Workers AI REST API: "
            "POST /client/v4/accounts/{account_id}/ai/run/{model}, and the OpenAI-compatible "
            "POST .../ai/v1/chat/completions and GET .../ai/v1/models (also under /v1). "
            "Without --model the embedded int8 model answers as "
            f"{DEFAULT_SERVED_MODEL}. The server reads local files only unless --online."
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
        "--port", type=port, default=DEFAULT_PORT, help="port (default %(default)s; 0: any free)"
    )
    serve.add_argument(
        "--api-token",
        default=None,
        help=(
            "bearer token clients must send (shows in `ps`: prefer --api-token-file or "
            f"${SERVER_TOKEN_ENV}; when none is set, any token is accepted)"
        ),
    )
    serve.add_argument(
        "--api-token-file",
        default=None,
        metavar="PATH",
        help="read the bearer token from this file (surrounding whitespace is ignored)",
    )
    serve.add_argument(
        "--health-auth",
        action="store_true",
        help="/health answers only with the bearer token (401 and nothing else without it)",
    )
    serve.add_argument(
        "--max-queue",
        type=non_negative_int,
        default=32,
        help="requests that may wait; more get 429 (default %(default)s)",
    )
    serve.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=8,
        help="requests admitted to run at once (default %(default)s)",
    )
    serve.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help=(
            "requests a local model decodes together in each step (continuous batching; "
            "default %(default)s)"
        ),
    )
    serve.add_argument(
        "--quantization",
        choices=["int8", "none"],
        default="int8",
        help="weights of the local models (default %(default)s)",
    )
    serve.add_argument(
        "--threads",
        type=non_negative_int,
        default=None,
        help="CPU threads per model (default: by model size, 1 for the embedded model; "
        "0: torch's own setting)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=float_arg,
        default=30.0,
        help="seconds in-flight requests get to finish on shutdown (default %(default)s)",
    )
    add_limit_arguments(serve)
    serve.add_argument(
        "--lazy", action="store_true", help="load the models on the first request, not at start"
    )
    serve.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help=(
            "serve the PEFT adapter in directory PATH as lora=NAME (loaded and checked at "
            "start); repeat for several. Requests may name only these adapters"
        ),
    )
    serve.add_argument(
        "--online",
        action="store_true",
        help=(
            "let models given by hub id download when they load (default: the server reads "
            "local files only)"
        ),
    )
    serve.set_defaults(handler=_cmd_serve)


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


def parse_lora_mappings(values: Sequence[str]) -> dict[str, str]:
    """Turn ``--lora NAME=PATH`` values into ``{adapter name: directory}``.

    Raises:
        UsageError: no ``=``, an empty name, the same name twice, or a path that is not a
            directory with ``adapter_config.json``.
    """
    mapping: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise UsageError(f"--lora {value!r}: expected NAME=PATH, both non-empty")
        if name in mapping:
            raise UsageError(f"--lora: the name {name!r} is given twice; give each adapter one")
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise UsageError(
                f"--lora {value!r}: {path!r} is not a PEFT adapter directory (it has no "
                "adapter_config.json); save one with peft's save_pretrained"
            )
        mapping[name] = os.path.abspath(path)
    return mapping


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from ..backends.local import LocalBackend

    mapping = parse_model_mappings(args.model)
    adapters = parse_lora_mappings(args.lora)
    token = resolve_token(args.api_token, args.api_token_file, os.environ.get(SERVER_TOKEN_ENV))
    if args.health_auth and token is None:
        raise UsageError(
            f"--health-auth needs a token: set --api-token-file, ${SERVER_TOKEN_ENV} or --api-token"
        )
    quantization = None if args.quantization == "none" else args.quantization
    by_source: dict[str | None, LocalBackend] = {}
    backends: dict[str, Backend] = {}
    for name, source in mapping.items():
        if source not in by_source:
            by_source[source] = LocalBackend(
                source,
                quantization=quantization,
                # Offline unless asked: no load a request can cause may reach the network.
                local_files_only=None if args.online else True,
                lora_adapters=adapters,
                num_threads=args.threads,
                max_batch_size=args.max_batch_size,
            )
        backends[name] = by_source[source]
    if not args.lazy:
        for source, backend in by_source.items():
            print(f"Loading {source or 'the embedded model'} ...", file=sys.stderr, flush=True)
            backend.load()
    return _run_server(args, backends, token, out, list(adapters))


def _stop_on_early_sigterm(server: Any) -> Any:
    """Until uvicorn installs its handlers, a SIGTERM still means a clean stop (exit 0)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, server.handle_exit)


def _run_server(
    args: argparse.Namespace,
    backends: dict[str, Backend],
    token: TokenSource | None,
    out: TextIO,
    adapters: list[str],
) -> int:
    from ..server import bind_socket, create_app
    from ..server.connections import uvicorn_config
    from ..server.lifecycle import GracefulServer

    app = create_app(
        backends,
        api_token=token.value if token else None,
        max_queue=args.max_queue,
        max_concurrency=args.max_concurrency,
        close_backends=True,
        lora_adapters=adapters,
        max_bytes_in_flight=args.max_bytes_in_flight,
        body_timeout=args.body_timeout,
        health_requires_token=args.health_auth,
    )
    sock = bind_socket(args.host, args.port)
    config = uvicorn_config(app, connection_limits(args), log_level="info")
    server = GracefulServer(config, app.state.gate, args.graceful_timeout)
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{sock.getsockname()[1]}/client/v4"
    auth = f"{token.curl_header} " if token else ""
    print(f"Serving {', '.join(sorted(backends))} on {base}", file=out, flush=True)
    if adapters:
        print(f"LoRA adapters: {', '.join(sorted(adapters))}", file=out, flush=True)
    print(
        f"OpenAI-compatible: {base}/accounts/local/ai/v1 (and {base[: -len('/client/v4')]}/v1)",
        file=out,
        flush=True,
    )
    print(
        f"Try: curl {base}/accounts/local/ai/run/{DEFAULT_SERVED_MODEL} {auth}"
        """-d '{"prompt": "Hello"}'""",
        file=out,
        flush=True,
    )
    early = _stop_on_early_sigterm(server)
    try:
        server.run(sockets=[sock])  # SIGTERM and Ctrl-C shut down gracefully, then return
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    finally:
        sock.close()
        if early is not None:
            signal.signal(signal.SIGTERM, early)
    print("Server stopped", file=out, flush=True)
    return EXIT_OK
