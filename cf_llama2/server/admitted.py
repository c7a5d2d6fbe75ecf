"""One call from admission to its answer or its first stream events, for every endpoint.

The Workers AI route and the OpenAI-compatible route differ only in how they read the request and
shape the response; the part in between is here once: wait for a slot in the admission queue
(a client that leaves while waiting is dropped, shutdown refuses what still waits), run the call
or start the stream while watching for a disconnect and for the end of the shutdown grace
period, and release the slot on every failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

from starlette.requests import Request as HTTPRequest

from ..backends.base import Backend
from ..schema import ChatResult, Request, StreamEvent
from .lifecycle import ShutdownGate
from .queue import AdmissionQueue
from .streaming import aclose_events, cancel_on_disconnect, first_events

__all__ = ["StartedStream", "run_admitted"]


@dataclass
class StartedStream:
    """A streamed call with its first events: the response now owns the rest and the slot."""

    head: list[StreamEvent]
    events: AsyncIterator[StreamEvent]
    cleanup: AsyncExitStack


async def run_admitted(
    http: HTTPRequest,
    request: Request,
    backend: Backend,
    *,
    queue: AdmissionQueue,
    gate: ShutdownGate,
) -> ChatResult | StartedStream:
    """The answer of a non-streamed call (its slot released), or a started stream.

    Raises:
        ClientDisconnected: the client left while waiting or while the call ran.
        CfLlama2Error: the queue is full, the server is shutting down, or the backend failed.
    """
    cleanup = AsyncExitStack()
    try:
        # Waiting for a slot counts as in flight too: a client that leaves the queue is dropped
        # from it instead of starting a generation nobody reads. Shutdown refuses what still
        # waits; what runs gets the grace period.
        await cancel_on_disconnect(
            http.receive,
            lambda: cleanup.enter_async_context(queue.slot()),
            stop=gate.wait_closing,
            stop_error=gate.error,
        )
        if not request.stream:
            result = await cancel_on_disconnect(
                http.receive,
                lambda: backend.arun(request),
                stop=gate.wait_expired,
                stop_error=gate.error,
            )
            await cleanup.aclose()
            return result
        events = backend.astream(request)
        try:
            head = await cancel_on_disconnect(
                http.receive,
                lambda: first_events(events),
                stop=gate.wait_expired,
                stop_error=gate.error,
            )
        except BaseException:
            await aclose_events(events)
            raise
    except BaseException:
        await cleanup.aclose()
        raise
    return StartedStream(head, events, cleanup)
