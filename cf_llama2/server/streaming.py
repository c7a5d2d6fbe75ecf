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

from ..schema import StreamEvent
from ..wire import SSEEncoder

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


async def cancel_on_disconnect(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()``; cancel it if the client disconnects first.

    Raises:
        ClientDisconnected: the client went away; ``work`` was cancelled.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    gone = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal gone
            await _wait_for_disconnect(receive)
            gone = True
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            outcome.append(await work())
        except Exception as exc:  # re-raised below, unwrapped from the task group
            failure.append(exc)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
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
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        head: list[StreamEvent],
        events: AsyncIterator[StreamEvent],
        cleanup: AsyncExitStack,
        encoder: EventEncoder | None = None,
    ) -> None:
        # No body attribute: init_headers then leaves out Content-Length (the body is chunked).
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._head = head
        self._events = events
        self._cleanup = cleanup
        self._encoder: EventEncoder = encoder if encoder is not None else SSEEncoder()

    async def _chunks(self) -> AsyncIterator[bytes]:
        encoder = self._encoder
        for event in self._head:
            yield encoder.encode(event)
        try:
            async for event in self._events:
                yield encoder.encode(event)
        except Exception as error:
            # Headers are out, so the status cannot change: send the failure envelope as one
            # last event (clients raise its typed error) and end without [DONE].
            logger.exception("the backend failed mid-stream; ending the stream with its error")
            yield encoder.encode_error(error)

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in self._chunks():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    await _wait_for_disconnect(receive)
                    logger.info("client disconnected mid-stream; stopping its generation")
                    group.cancel_scope.cancel()

                group.start_soon(watch)
                await self._send_all(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _aclose(self._events)
                await self._cleanup.aclose()


async def _aclose(events: Any) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            logger.exception("closing the backend's event stream failed")
