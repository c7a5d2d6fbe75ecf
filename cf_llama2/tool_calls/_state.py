"""The state of the tool-call stream parser and how it buffers what it emits.

:class:`StreamState` is the base of :class:`~cf_llama2.tool_calls.parser.ToolCallStreamParser`:
it holds every field the parser's layers share (the JSON-candidate layer in
:mod:`cf_llama2.tool_calls._candidates`, the text-and-marker layer in
:mod:`cf_llama2.tool_calls._markers`)
and merges consecutive text or argument fragments into as few deltas as possible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..schema import TextDelta, ToolCallDelta
from ..tools import Tool
from ._json_scan import JsonScanner
from .shape import new_tool_call_id

__all__ = ["CallObj", "Mode", "Phase", "Recovery", "Region", "Seen", "StreamState"]

Mode = Literal["text", "fence", "open", "json", "post", "recover"]
"""What the parser is reading: plain text, a code fence's language tag, the space after an opening
marker, a JSON candidate, what follows a call, or the rest of a broken call."""
Phase = Literal["undecided", "buffered", "committed", "bad"]
"""A call object: keys not yet decisive, buffered until complete, streaming, or not a call."""
Region = Literal["pending", "calls", "skip"]
"""A JSON candidate: not yet known, holding calls, or plain JSON (released as text)."""


@dataclass
class CallObj:
    """Recognition state of one JSON object that may be a call."""

    start: int
    phase: Phase = "undecided"
    name: str | None = None
    name_key: str | None = None
    key: str | None = None
    value_start: int = 0
    index: int = -1
    args_key: str | None = None
    args_start: int | None = None
    args_kind: str = ""
    args_sent: int = 0
    args_done: bool = False


@dataclass
class Recovery:
    """State while the rest of a broken call is kept with it."""

    index: int = -1
    depth: int = 0
    in_string: bool = False
    escape: bool = False
    newline: bool = False


@dataclass
class Seen:
    """What the parser emitted for one call index (to compute the final finish reason)."""

    name: str | None
    args: list[str] = field(default_factory=list)
    error: str | None = None


class StreamState:
    """The parser's fields and its output buffering (see ``ToolCallStreamParser``)."""

    def __init__(
        self, tools: Sequence[Tool] = (), *, new_id: Callable[[], str] = new_tool_call_id
    ) -> None:
        self.tools = list(tools)
        self._tool_names = {t.name for t in self.tools}
        self._new_id = new_id
        self._mode: Mode = "text"
        self._ws = ""  # whitespace held in text mode
        self._mark = ""  # held prefix of a marker
        self._lead = ""  # held text before a JSON candidate (whitespace, an opening marker)
        self._wrapper: str | None = None  # closing marker expected after calls; "" for none
        self._lang = ""  # a code fence's language tag
        self._raw = ""  # the JSON candidate so far
        self._dropped: list[int] = []  # offsets in _raw of trailing commas to leave out
        self._scan = JsonScanner()
        self._top = "{"
        self._region: Region = "pending"
        self._obj: CallObj | None = None
        self._items = 0  # items seen in the current list of calls
        self._post = ""  # held prefix of a closing marker after a call
        self._post_ws = ""  # whitespace after a call
        self._gap: str | None = None  # whitespace before the first call of a run of calls
        self._text_seen = False  # some non-blank text was emitted
        self._rec = Recovery()
        self._n = 0
        self._seen: dict[int, Seen] = {}
        self._cut = False
        self._finished = False
        self._events: list[TextDelta | ToolCallDelta] = []
        self._pend_text: list[str] = []
        self._pend_args: tuple[int, list[str]] | None = None

    # -- output buffering ---------------------------------------------------------------------

    def _flush(self) -> None:
        if self._pend_text:
            self._events.append(TextDelta(text="".join(self._pend_text)))
            self._pend_text = []
        if self._pend_args is not None:
            index, parts = self._pend_args
            self._events.append(ToolCallDelta(index=index, arguments="".join(parts)))
            self._pend_args = None

    def _text(self, s: str) -> None:
        if not s:
            return
        if s.strip():
            self._text_seen = True
            self._gap = None
        if self._pend_args is not None:
            self._flush()
        self._pend_text.append(s)

    def _args(self, index: int, s: str) -> None:
        if not s:
            return
        self._seen[index].args.append(s)
        if self._pend_text or (self._pend_args is not None and self._pend_args[0] != index):
            self._flush()
        if self._pend_args is None:
            self._pend_args = (index, [])
        self._pend_args[1].append(s)

    def _emit_call(self, index: int, name: str | None, error: str | None) -> None:
        self._seen[index] = Seen(name=name or None, error=error)
        self._flush()
        self._events.append(
            ToolCallDelta(index=index, id=self._new_id(), name=name or None, error=error)
        )

    def _emit_error(self, index: int, error: str) -> None:
        self._seen[index].error = error
        self._flush()
        self._events.append(ToolCallDelta(index=index, error=error))

    def _drain(self) -> list[TextDelta | ToolCallDelta]:
        self._flush()
        events, self._events = self._events, []
        return events

    # -- implemented by the text-and-marker layer ---------------------------------------------

    def _text_char(self, ch: str) -> None:
        """Handle one character of plain text (where a marker or a call may begin)."""
        raise NotImplementedError
