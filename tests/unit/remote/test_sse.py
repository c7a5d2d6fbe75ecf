"""The SSE framing decoder: bytes in any chunking -> the same events."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2.backends.remote import sse as sse_module
from cf_llama2.backends.remote.sse import ServerSentEvent, SSEDecoder, aiter_sse, iter_sse
from cf_llama2.errors import BadResponseError

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


class _CountingPattern:
    """Stands in for the decoder's line-end pattern and counts the characters it scans."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.scanned = 0

    def finditer(self, text: str) -> Any:
        self.scanned += len(text)
        return self.pattern.finditer(text)


def test_a_long_line_is_scanned_once_not_on_every_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _CountingPattern(sse_module._LINE_END)
    monkeypatch.setattr(sse_module, "_LINE_END", counting)
    decoder = SSEDecoder(max_line=10_000_000)
    chunk = b"x" * 4096
    fed = len(b"data: ")
    decoder.feed(b"data: ")
    for _ in range(1000):  # a 4 MB line without a newline, in 4 KB chunks
        assert decoder.feed(chunk) == []
        fed += len(chunk)
    assert decoder.feed(b"\n\n")[0].data == "x" * (fed - 6)
    assert counting.scanned <= fed + 2


def test_a_line_past_the_cap_is_a_bad_response() -> None:
    decoder = SSEDecoder(max_line=1000)
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(BadResponseError, match="longer than 1000 characters"):
        decoder.feed(b"x" * 200)
    with pytest.raises(BadResponseError, match="a line longer"):
        SSEDecoder(max_line=10).feed(b"data: 0123456789\n")


def test_an_events_data_past_the_cap_is_a_bad_response() -> None:
    decoder = SSEDecoder(max_line=100)
    for _ in range(6):
        decoder.feed(b"data: 0123456789\n")
    with pytest.raises(BadResponseError, match="event's data longer"):
        decoder.feed(b"data: 0123456789\n" * 4)


def test_the_default_cap_stops_a_50_mb_line() -> None:
    decoder = SSEDecoder()
    chunk = b"x" * 65536

    def feed_50_mb() -> None:
        for _ in range(50_000_000 // len(chunk)):
            decoder.feed(chunk)

    with pytest.raises(BadResponseError):
        feed_50_mb()


def test_retry_field_with_non_ascii_digits_is_ignored() -> None:
    assert list(iter_sse([b"retry: \xc2\xb2\ndata: x\n\n"])) == [ServerSentEvent(data="x")]


def test_a_blank_line_ended_by_a_lone_cr_dispatches_at_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\r") == [ServerSentEvent(data="x")]
    assert decoder.feed(b"\ndata: y\n\n") == [ServerSentEvent(data="y")]
