"""Server-sent events: bytes in, events out, incrementally.

This is only the framing layer of the SSE specification (lines, ``data:``/``event:``/``id:``/
``retry:`` fields, comments, a blank line ending each event). What the ``data`` means is the wire
format's business (:class:`cf_llama2.wire.WireStreamDecoder`), and folding events into an answer
is the reducer's.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its ``data`` (lines joined with ``\\n``) and optional fields."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, get the complete events.

    Handles ``\\n``, ``\\r\\n`` and ``\\r`` line ends (also split across chunks), UTF-8 split
    across chunks, multi-line ``data``, comments (``:`` lines) and a leading BOM.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Add received bytes; return the events they complete."""
        return self._feed_text(self._utf8.decode(chunk))

    def flush(self) -> list[ServerSentEvent]:
        """End of input: an event without its closing blank line is dispatched too."""
        events = self._feed_text(self._utf8.decode(b"", final=True))
        if self._buffer:
            line, self._buffer = self._buffer, ""
            self._line(line, events)
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._buffer += text
        events: list[ServerSentEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, width = cut
            line = self._buffer[:end]
            self._buffer = self._buffer[end + width :]
            self._line(line, events)
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if self._data:
            events.append(
                ServerSentEvent(
                    data="\n".join(self._data),
                    event=self._event or "message",
                    id=self._id,
                    retry=self._retry,
                )
            )
        self._data = []
        self._event = ""
        self._retry = None


def _line_end(buffer: str) -> tuple[int, int] | None:
    """Position and width of the first complete line end, if any.

    A ``\\r`` at the very end of the buffer is not yet a line end: it may be half of ``\\r\\n``.
    """
    lf, cr = buffer.find("\n"), buffer.find("\r")
    if cr == -1 or (lf != -1 and lf < cr):
        return None if lf == -1 else (lf, 1)
    if cr + 1 == len(buffer):
        return None
    return (cr, 2) if buffer[cr + 1] == "\n" else (cr, 1)


def iter_sse(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of byte chunks into events, as they arrive."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Async twin of :func:`iter_sse`."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
