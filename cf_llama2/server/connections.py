"""Connection limits uvicorn does not offer, and the server's uvicorn settings.

uvicorn closes a keep-alive connection that stays idle *after* an answer
(``timeout_keep_alive``) and answers 503 past ``limit_concurrency``, but a connection that sends
nothing, or half a request head, stays open forever. :func:`header_timeout_protocol` adds a
deadline for the request head; the app adds one for the body (see :class:`BodyBudget`'s
neighbour ``read_body``), and :class:`BodyBudget` bounds the body bytes held across all
connections at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ConfigurationError, RateLimitError, WorkersAIErrorDetail

__all__ = ["BodyBudget", "ConnectionLimits", "header_timeout_protocol", "uvicorn_config"]


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits of a served app.

    Attributes:
        limit_concurrency: open connections (and running requests) before new requests get 503.
        keep_alive: seconds an idle keep-alive connection stays open after an answer.
        header_timeout: seconds a connection gets to send a complete request head.
    """

    limit_concurrency: int = 256
    keep_alive: float = 5.0
    header_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.limit_concurrency, int) or self.limit_concurrency < 1:
            raise ConfigurationError(
                f"limit_concurrency must be an integer >= 1; got {self.limit_concurrency!r}"
            )
        for name in ("keep_alive", "header_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"{name} must be a number of seconds > 0; got {value!r}")


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections whose request head is late.

    The deadline runs from the connection's first byte (or the end of its previous answer)
    until a complete request head has arrived; a connection that misses it is closed quietly.
    """

    class HeaderTimeoutProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._head_timer is None and self._waiting_for_head():
                self._head_timer = self.loop.call_later(seconds, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.logger.info("closing a connection that sent no request head in %s s", seconds)
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_head():
                self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, limits: ConnectionLimits, **options: Any) -> uvicorn.Config:
    """A uvicorn config for ``app`` with ``limits`` (h11 with the head deadline, no websockets)."""
    return uvicorn.Config(
        app,
        http=header_timeout_protocol(limits.header_timeout),
        ws="none",
        lifespan="on",
        limit_concurrency=limits.limit_concurrency,
        # uvicorn annotates int, but any number of seconds works (it goes to call_later).
        timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]
        **options,
    )


class BodyBudget:
    """Bounds the request-body bytes held at once, across all connections.

    A body is counted from its first chunk until it has been decoded; a chunk that would take
    the total over ``limit`` refuses its request with 429 (code 3040) and ``Retry-After``.

    Args:
        limit: the most body bytes in flight at once.
        retry_after: seconds a refused client is told to wait.
    """

    def __init__(self, limit: int, retry_after: int = 1) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"max_bytes_in_flight must be an integer >= 1; got {limit!r}")
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes.

        Raises:
            RateLimitError: the total would pass the limit (nothing is counted then).
        """
        if self.in_flight + size > self.limit:
            message = (
                f"Capacity temporarily exceeded: request bodies of {self.in_flight} bytes are "
                f"being received (max_bytes_in_flight={self.limit}); retry after "
                f"{self.retry_after} s"
            )
            raise RateLimitError(
                message,
                retry_after=float(self.retry_after),
                status_code=429,
                errors=[WorkersAIErrorDetail(code=3040, message=message)],
            )
        self.in_flight += size

    def give_back(self, size: int) -> None:
        """Stop counting ``size`` bytes."""
        self.in_flight = max(0, self.in_flight - size)
