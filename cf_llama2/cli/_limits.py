"""``cf-llama2 serve``'s connection and body limits (flags with their defaults)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._common import float_arg, positive_int

if TYPE_CHECKING:
    from ..server.connections import ConnectionLimits

__all__ = ["add_limit_arguments", "connection_limits"]

# The server's defaults, written out so that `cf-llama2 --help` works without the server extra
# (a test checks they match cf_llama2.server's).
LIMIT_CONCURRENCY = 256
KEEP_ALIVE = 5.0
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024


def _seconds(text: str) -> float:
    value = float_arg(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0; got {text!r}")
    return value


def add_limit_arguments(serve: argparse.ArgumentParser) -> None:
    """Add the connection and body limits to the ``serve`` parser."""
    serve.add_argument(
        "--limit-concurrency",
        type=positive_int,
        default=LIMIT_CONCURRENCY,
        help="open connections before new requests get 503 (default %(default)s)",
    )
    serve.add_argument(
        "--keep-alive",
        type=_seconds,
        default=KEEP_ALIVE,
        help="seconds an idle connection stays open after an answer (default %(default)s)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_seconds,
        default=HEADER_TIMEOUT,
        help="seconds a connection gets to send a request head; then it is closed "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--body-timeout",
        type=_seconds,
        default=BODY_TIMEOUT,
        help="seconds a client gets to send the whole body; then 408 (default %(default)s)",
    )
    serve.add_argument(
        "--max-bytes-in-flight",
        type=positive_int,
        default=MAX_BYTES_IN_FLIGHT,
        help="request-body bytes held at once across connections; more get 429 "
        "(default %(default)s)",
    )


def connection_limits(args: argparse.Namespace) -> ConnectionLimits:
    """The :class:`~cf_llama2.server.connections.ConnectionLimits` the flags ask for."""
    from ..server.connections import ConnectionLimits

    return ConnectionLimits(
        limit_concurrency=args.limit_concurrency,
        keep_alive=args.keep_alive,
        header_timeout=args.header_timeout,
    )
