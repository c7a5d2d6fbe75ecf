"""Server-sent event responses that stop generation when the client goes away.

The first event is pulled from the backend *before* the response starts, so an error the backend
raises up front (validation, prompt too long, ...) still becomes a proper HTTP status and Workers
AI error envelope. After that the events are framed by :class:`cf_llama2.wire.SSEEncoder`
(``data: {...}`` lines, the late usage event, ``data: [DONE]`` after the end event). A backend
that fails mid-stream gets its failure envelope sent as a last ``data:`` event, without
``[DONE]``; a stream that ends without its end event ends without ``[DONE]`` too, so clients
report it as truncated.

While a stream runs, a watcher listens for ``http.disconnect``: when the client disconnects the
stream is cancelled and the backend's event iterator is closed at once (which stops its
generation), instead of when the next token fails to send. The cleanup (closing the iterator and
releasing the admission slot) runs whatever happens: success, disconnect, error or shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol, TypeVar

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import CfLlama2Error
from ..schema import EndEvent, StreamEvent
from ..wire import SSEEncoder
from .failures import FailureLog, internal_error
from .lifecycle import FLUSH_SECONDS, ShutdownGate

__all__ = [
    "ClientDisconnected",
    "EventEncoder",
    "SSEResponse",
    "cancel_on_disconnect",
    "first_events",
]

logger = logging.getLogger("cf_llama2.server")

T = TypeVar("T")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class EventEncoder(Protocol):
    """Frames stream events as SSE bytes (:class:`cf_llama2.wire.SSEEncoder` is one)."""

    def encode(self, event: StreamEvent) -> bytes: ...

    def encode_error(self, error: BaseException) -> bytes: ...


class ClientDisconnected(Exception):
    """The client closed the connection before its answer was ready."""


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def cancel_on_disconnect(
    receive: Receive,
    work: Callable[[], Awaitable[T]],
    *,
    stop: Callable[[], Awaitable[None]] | None = None,
    stop_error: Callable[[], BaseException] | None = None,
) -> T:
    """Run ``work()``; cancel it if the client disconnects first (or ``stop()`` returns first).

    Raises:
        ClientDisconnected: the client went away; ``work`` was cancelled.
        BaseException: ``stop_error()``, when ``stop()`` returned first; ``work`` was cancelled.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    gone = False
    stopped = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal gone
            await _wait_for_disconnect(receive)
            gone = True
            group.cancel_scope.cancel()

        async def watch_stop() -> None:
            nonlocal stopped
            if stop is not None:
                await stop()
                stopped = True
                group.cancel_scope.cancel()

        group.start_soon(watch)
        if stop is not None:
            group.start_soon(watch_stop)
        try:
            outcome.append(await work())
        except Exception as exc:  # re-raised below, unwrapped from the task group
            failure.append(exc)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    if stopped and not outcome and stop_error is not None:
        raise stop_error()
    if gone or not outcome:
        raise ClientDisconnected("the client disconnected before the answer was ready")
    return outcome[0]


async def first_events(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    """Pull the first event of a stream (so that up-front errors raise before the response).

    Returns:
        A list with the first event, or an empty list when the stream was empty.
    """
    try:
        return [await events.__anext__()]
    except StopAsyncIteration:
        return []


class SSEResponse(Response):
    """A ``text/event-stream`` response over backend events, cancelled on client disconnect.

    Args:
        head: events already pulled from ``events`` (sent first).
        events: the rest of the backend's event iterator (closed when the response ends).
        cleanup: closed when the response ends, however it ends (releases the admission slot).
        encoder: frames the events (default: the Workers AI framing, :class:`SSEEncoder`).
        gate: the server's shutdown gate; when its grace period runs out the stream ends with
            the gate's error event and a clean end of the body.
        failures: where unexpected failures are logged (the client gets a request id).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        head: list[StreamEvent],
        events: AsyncIterator[StreamEvent],
        cleanup: AsyncExitStack,
        encoder: EventEncoder | None = None,
        *,
        gate: ShutdownGate | None = None,
        failures: FailureLog | None = None,
    ) -> None:
        # No body attribute: init_headers then leaves out Content-Length (the body is chunked).
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._head = head
        self._events = events
        self._cleanup = cleanup
        self._encoder: EventEncoder = encoder if encoder is not None else SSEEncoder()
        self._gate = gate
        self._failures = failures or FailureLog()
        self._started = False
        self._ended = False

    async def _chunks(self) -> AsyncIterator[bytes]:
        # ``_ended`` is set once the last frame was sent (the generator resumes after a send).
        encoder = self._encoder
        for event in self._head:
            yield encoder.encode(event)
            self._ended = isinstance(event, EndEvent)
        try:
            async for event in self._events:
                yield encoder.encode(event)
                self._ended = isinstance(event, EndEvent)
        except CfLlama2Error as error:
            # Headers are out, so the status cannot change: send the failure envelope as one
            # last event (clients raise its typed error) and end without [DONE].
            logger.warning("the backend failed mid-stream (%s); ending the stream with it", error)
            yield encoder.encode_error(error)
            self._ended = True
        except Exception as error:
            yield encoder.encode_error(internal_error(self._failures.record(error)))
            self._ended = True

    async def _start(self, send: Send) -> None:
        if not self._started:
            self._started = True
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

    async def _send_all(self, send: Send) -> None:
        await self._start(send)
        async for chunk in self._chunks():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _end_for_shutdown(self, send: Send) -> None:
        assert self._gate is not None
        await self._start(send)
        if not self._ended:
            chunk = self._encoder.encode_error(self._gate.error())
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        expired = False
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    await _wait_for_disconnect(receive)
                    logger.info("client disconnected mid-stream; stopping its generation")
                    group.cancel_scope.cancel()

                async def watch_shutdown() -> None:
                    nonlocal expired
                    assert self._gate is not None
                    await self._gate.wait_expired()
                    expired = True
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                if self._gate is not None:
                    group.start_soon(watch_shutdown)
                await self._send_all(send)
                group.cancel_scope.cancel()
            if expired:
                logger.info("grace period over; ending an open stream with an error event")
                with anyio.move_on_after(FLUSH_SECONDS):
                    await self._end_for_shutdown(send)
        finally:
            with anyio.CancelScope(shield=True):
                await aclose_events(self._events)
                await self._cleanup.aclose()


async def aclose_events(events: Any) -> None:
    """Close a backend's event iterator; a failure to close is logged, never raised."""
    close = getattr(events, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.exception("closing the backend's event stream failed")
