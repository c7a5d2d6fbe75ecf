"""Graceful shutdown that keeps the Workers AI protocol.

When shutdown begins (SIGTERM, Ctrl-C or :meth:`ServerHandle.stop`), :class:`ShutdownGate`
closes: requests not yet running (new ones, those still uploading and those waiting in the
queue) get HTTP 503 with the Workers AI envelope and ``Retry-After``. Requests already running
get the grace period to finish. When it runs out the gate *expires*: each open stream ends with
one error event in the Workers AI SSE shape and a clean end of the chunked body, and each
non-streamed request still running gets the same 503 envelope. :class:`GracefulServer` is the
uvicorn server that drives the gate, and exits normally on a signal (status 0) instead of
re-raising it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import anyio
import uvicorn

from ..errors import RateLimitError, WorkersAIErrorDetail

__all__ = ["FLUSH_SECONDS", "GracefulServer", "ShutdownGate", "shutting_down_error"]

FLUSH_SECONDS = 1.5
"""Time after the grace period for the error events to go out before tasks are cancelled."""


def shutting_down_error(retry_after: int = 1) -> RateLimitError:
    """The 503 a request gets while the server shuts down (Workers AI code 3040)."""
    message = (
        "Service unavailable: this server is shutting down and takes no new work; retry after "
        f"{retry_after} s (against another instance, or once it is back)"
    )
    return RateLimitError(
        message,
        retry_after=float(retry_after),
        status_code=503,
        errors=[WorkersAIErrorDetail(code=3040, message=message)],
    )


class ShutdownGate:
    """Shared shutdown state of one app: ``closing`` (stop admitting), then ``expired``.

    Events are created lazily so that they bind to the server's event loop.
    """

    def __init__(self, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        self.closing = False
        self.expired = False
        self._closing_event: anyio.Event | None = None
        self._expired_event: anyio.Event | None = None

    def error(self) -> RateLimitError:
        """The 503 error for a request refused or cut by the shutdown."""
        return shutting_down_error(self.retry_after)

    def close(self) -> None:
        """Stop admitting (called on the event loop when shutdown begins)."""
        self.closing = True
        if self._closing_event is not None:
            self._closing_event.set()

    def expire(self) -> None:
        """The grace period is over: end what still runs (called on the event loop)."""
        self.close()
        self.expired = True
        if self._expired_event is not None:
            self._expired_event.set()

    async def wait_closing(self) -> None:
        """Return once shutdown has begun."""
        if self._closing_event is None:
            self._closing_event = anyio.Event()
        if not self.closing:
            await self._closing_event.wait()

    async def wait_expired(self) -> None:
        """Return once the grace period is over."""
        if self._expired_event is None:
            self._expired_event = anyio.Event()
        if not self.expired:
            await self._expired_event.wait()


class GracefulServer(uvicorn.Server):
    """A uvicorn server that closes the app's :class:`ShutdownGate` on shutdown.

    Args:
        config: the uvicorn config; its ``timeout_graceful_shutdown`` is set to
            ``grace + FLUSH_SECONDS``.
        gate: the app's gate (``app.state.gate``).
        grace: seconds running requests get to finish once shutdown begins.
    """

    def __init__(self, config: uvicorn.Config, gate: ShutdownGate, grace: float) -> None:
        # uvicorn annotates int, but any number of seconds works (it goes to asyncio.wait_for).
        config.timeout_graceful_shutdown = grace + FLUSH_SECONDS  # type: ignore[assignment]
        super().__init__(config)
        self.gate = gate
        self.grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop admitting, give running requests ``grace`` seconds, then end them cleanly."""
        self.gate.close()
        timer = asyncio.get_running_loop().call_later(self.grace, self.gate.expire)
        try:
            await super().shutdown(sockets)
        finally:
            timer.cancel()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Shut down on the signal; do not re-raise it afterwards (the process exits 0)."""
        super().handle_exit(sig, frame)
        self._captured_signals.clear()
