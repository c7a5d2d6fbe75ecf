"""The SSE framing decoder: bytes in any chunking -> the same events."""

from __future__ import annotations

import pytest

from cf_llama2.backends.remote.sse import ServerSentEvent, SSEDecoder, aiter_sse, iter_sse

STREAM = (
    b'data: {"response":"Hello","p":"abc"}\n\n'
    b": a comment line\n"
    b'data: {"response":" w\xc3\xb6rld"}\r\n\r\n'
    b"event: error\rdata: first\rdata: second\r\r"
    b"id: 7\nretry: 1500\ndata: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent(data='{"response":"Hello","p":"abc"}'),
    ServerSentEvent(data='{"response":" wörld"}'),
    ServerSentEvent(data="first\nsecond", event="error"),
    ServerSentEvent(data="[DONE]", id="7", retry=1500),
]


def _chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    assert list(iter_sse(_chunked(STREAM, size))) == EXPECTED


async def test_async_twin() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for chunk in _chunked(STREAM, 5):
            yield chunk

    assert [e async for e in aiter_sse(chunks())] == EXPECTED


def test_events_are_delivered_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data="one")]
    assert decoder.feed(b"data: two") == []
    # A lone \r at the end may be half of \r\n: not yet a line end.
    assert decoder.feed(b"\r") == []
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent(data="two")]


def test_bom_field_without_space_and_unknown_fields() -> None:
    events = list(iter_sse([b"\xef\xbb\xbfdata:x\nfoo: bar\ndata:  y\n\n"]))
    assert events == [ServerSentEvent(data="x\n y")]


def test_flush_dispatches_an_unterminated_event_and_ignores_empty_ones() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: ping\n\ndata: tail") == []
    assert decoder.flush() == [ServerSentEvent(data="tail")]
