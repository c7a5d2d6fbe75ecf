"""Server-sent events: bytes in, events out, incrementally.

This is only the framing layer of the SSE specification (lines, ``data:``/``event:``/``id:``/
``retry:`` fields, comments, a blank line ending each event). What the ``data`` means is the wire
format's business (:class:`cf_llama2.wire.WireStreamDecoder`), and folding events into an answer
is the reducer's.

The decoder does linear work: each received byte is scanned once (a long line arriving in many
chunks is kept as a list of pieces, not rescanned), and a line or an event's data longer than
``max_line`` characters raises :class:`~cf_llama2.errors.BadResponseError` instead of growing
without bound.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from ...errors import BadResponseError

__all__ = ["MAX_LINE", "SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]

MAX_LINE = 4 * 1024 * 1024
"""The default cap, in characters, on one SSE line and on the data of one event (4 Mi).

A Workers AI event is a few hundred bytes (one token, or the final usage); the cap only stops a
server that never ends a line from filling the client's memory.
"""

_LINE_END = re.compile(r"\r\n?|\n")


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

    Args:
        max_line: the longest line, and the longest data of one event, in characters.

    Raises:
        BadResponseError: from :meth:`feed` or :meth:`flush`, when a line or an event's data
            grows past ``max_line``.
    """

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be >= 1; got {max_line}")
        self._max_line = max_line
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # pieces of the line not ended yet
        self._pending_size = 0
        self._skip_lf = False  # the text so far ended in "\r": a "\n" next completes "\r\n"
        self._data: list[str] = []
        self._data_size = 0
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
        if self._pending:
            line = "".join(self._pending)
            self._pending, self._pending_size = [], 0
            self._line(line, events)
        self._skip_lf = False
        self._dispatch(events)
        return events

    def _too_long(self, what: str) -> BadResponseError:
        return BadResponseError(
            f"the server sent {what} longer than {self._max_line} characters; a Workers AI "
            "stream sends short 'data:' lines, so this answer is not one (check base_url=)"
        )

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        if not text:
            return events
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        start = 0
        for match in _LINE_END.finditer(text):
            piece = text[start : match.start()]
            if self._pending_size + len(piece) > self._max_line:
                raise self._too_long("a line")
            if self._pending:
                self._pending.append(piece)
                piece = "".join(self._pending)
                self._pending, self._pending_size = [], 0
            self._line(piece, events)
            start = match.end()
        # A "\r" ending the text is a line end already handled; a "\n" may still follow it.
        self._skip_lf = text.endswith("\r")
        if start < len(text):
            rest = text[start:]
            self._pending_size += len(rest)
            if self._pending_size > self._max_line:
                raise self._too_long("a line")
            self._pending.append(rest)
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
            self._data_size += len(value) + 1
            if self._data_size > self._max_line:
                raise self._too_long("an event's data")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
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
        self._data_size = 0
        self._event = ""
        self._retry = None


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
