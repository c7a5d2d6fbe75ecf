"""The stream parser's output: text and tool-call deltas, merged into as few events as possible.

Every layer of the parser writes here (text through :meth:`EventBuffer.text`, calls through the
call builder in :mod:`cf_llama2.tool_calls._calls`). Consecutive text fragments become one
:class:`~cf_llama2.schema.TextDelta`, consecutive argument fragments of one call one
:class:`~cf_llama2.schema.ToolCallDelta`. The buffer also remembers what the text around calls
needs: whether non-blank text was emitted, and the whitespace before the first call since then.
"""

from __future__ import annotations

from ..schema import TextDelta, ToolCallDelta
from ._json_scan import WHITESPACE

__all__ = ["EventBuffer"]


class EventBuffer:
    """Collects the parser's events until :meth:`drain`.

    Attributes:
        text_seen: some non-blank text was emitted.
        gap: the whitespace before the first call of a run of calls since the last non-blank
            text (``None`` before such a call); kept as the separator when text follows the calls.
    """

    def __init__(self) -> None:
        self.text_seen = False
        self.gap: str | None = None
        self._events: list[TextDelta | ToolCallDelta] = []
        self._pend_text: list[str] = []
        self._pend_args: tuple[int, list[str]] | None = None

    def text(self, s: str) -> None:
        """Emit text (merged with the text just before it)."""
        if not s:
            return
        if s.strip():
            self.text_seen = True
            self.gap = None
        if self._pend_args is not None:
            self._flush()
        self._pend_text.append(s)

    def note_gap(self, lead: str) -> None:
        """A run of calls starts after ``lead``; its leading whitespace is the gap, if none yet."""
        if self.gap is None:
            self.gap = lead[: len(lead) - len(lead.lstrip(WHITESPACE))]

    def args(self, index: int, s: str) -> None:
        """Emit a fragment of the arguments of call ``index`` (merged with the one before it)."""
        if not s:
            return
        if self._pend_text or (self._pend_args is not None and self._pend_args[0] != index):
            self._flush()
        if self._pend_args is None:
            self._pend_args = (index, [])
        self._pend_args[1].append(s)

    def call(self, index: int, call_id: str, name: str | None, error: str | None) -> None:
        """Emit the first delta of call ``index``: its id, its name and maybe an error."""
        self._flush()
        self._events.append(ToolCallDelta(index=index, id=call_id, name=name, error=error))

    def error(self, index: int, error: str) -> None:
        """Emit an error for call ``index`` after its first delta."""
        self._flush()
        self._events.append(ToolCallDelta(index=index, error=error))

    def drain(self) -> list[TextDelta | ToolCallDelta]:
        """Return the events so far and start over."""
        self._flush()
        events, self._events = self._events, []
        return events

    def _flush(self) -> None:
        if self._pend_text:
            self._events.append(TextDelta(text="".join(self._pend_text)))
            self._pend_text = []
        if self._pend_args is not None:
            index, parts = self._pend_args
            self._events.append(ToolCallDelta(index=index, arguments="".join(parts)))
            self._pend_args = None
