"""One attempt of a remote call: what the sync and async loops of the backend share.

Build the request with the attempt's deadline (:func:`build_request`), read a body under it
(:func:`read_all`, :func:`aread_all`), turn an answer into a result or events
(:func:`result_of`, :func:`events_of`) and any failure into the typed error to retry or raise
(:func:`failure`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable

import httpx

from ...errors import APIError, IncompleteStreamError
from ...schema import ChatResult, StreamEvent
from ...schema.reducer import reduce_events
from .deadline import Deadline, DeadlineExceeded
from .endpoint import call_headers
from .exchange import PreparedCall, StreamDecoder, answer_events, response_error, transport_error

__all__ = [
    "FAILURES",
    "aread_all",
    "build_request",
    "events_of",
    "failure",
    "read_all",
    "result_of",
]

# What one attempt can fail with; :func:`_failure` turns each into the error to raise or retry.
FAILURES = (APIError, httpx.HTTPError, DeadlineExceeded)


def build_request(
    client: httpx.Client | httpx.AsyncClient, call: PreparedCall, deadline: Deadline
) -> httpx.Request:
    """The attempt's ``httpx.Request`` (through the client: its own headers, cookies... apply)."""
    return client.build_request(
        "POST",
        call.target if call.target is not None else call.url,
        content=call.content,
        headers=call_headers(client, call.headers),
        timeout=deadline.httpx_timeout(),
    )


def read_all(chunks: Iterable[bytes], deadline: Deadline) -> bytes:
    """The whole body, checking the deadline as each piece arrives (a trickle cannot stall)."""
    parts = []
    for chunk in chunks:
        parts.append(chunk)
        deadline.check()
    return b"".join(parts)


async def aread_all(chunks: AsyncIterable[bytes], deadline: Deadline) -> bytes:
    """Async :func:`read_all`."""
    parts = []
    async for chunk in chunks:
        parts.append(chunk)
        deadline.check()
    return b"".join(parts)


def result_of(call: PreparedCall, response: httpx.Response, content: bytes) -> ChatResult:
    if response.status_code >= 400:
        raise response_error(response.status_code, response.headers, content)
    return reduce_events(answer_events(call, response.status_code, content), model=call.model)


def events_of(call: PreparedCall, response: httpx.Response, content: bytes) -> list[StreamEvent]:
    if response.status_code >= 400:
        raise response_error(response.status_code, response.headers, content)
    return answer_events(call, response.status_code, content)


def failure(
    exc: BaseException, deadline: Deadline, decoder: StreamDecoder | None = None
) -> APIError:
    """The typed error for a failed attempt."""
    if isinstance(exc, APIError):
        return exc
    delivered = decoder is not None and decoder.delivered
    if isinstance(exc, (DeadlineExceeded, httpx.TimeoutException)):
        if decoder is not None and delivered:
            return IncompleteStreamError(
                f"the Workers AI stream sent no event for {deadline.seconds:g} s (timeout=); the "
                "answer is truncated. Retry the request.",
                partial_text=decoder.text,
            )
        return deadline.error(stream=decoder is not None)
    assert isinstance(exc, httpx.HTTPError)
    return transport_error(
        exc,
        after_events=delivered,
        text=decoder.text if decoder is not None else "",
        answered=deadline.answered,
    )
