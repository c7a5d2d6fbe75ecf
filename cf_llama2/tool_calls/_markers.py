"""The stream parser's marker scanner: plain text, the markers around calls, what follows a call.

Text streams out as soon as it cannot start a call. Held back: trailing whitespace, a ``{`` or
``[`` (the start of a JSON candidate, handed to the parser as
:class:`~cf_llama2.tool_calls._state.OpenJson`), and a prefix of an opening marker (a code fence
with an allowed language tag, ``<tool_call>``, ``[TOOL_CALLS]``). After a call, a closing marker
is dropped, another call in the same wrapper continues the run, and anything else is text again
(with one separator kept when text came before the calls).
"""

from __future__ import annotations

from ._events import EventBuffer
from ._json_scan import WHITESPACE
from ._state import MarkerMode, OpenJson

__all__ = ["MarkerScanner"]

_MARKERS = ("```", "<tool_call>", "[TOOL_CALLS]")
_FENCE_LANGS = ("", "json", "tool_call", "tool_calls", "tool_code")


class MarkerScanner:
    """Text, markers and what follows a call, one character at a time.

    :meth:`push` returns :class:`~cf_llama2.tool_calls._state.OpenJson` when a JSON candidate
    starts (the scanner then waits until the parser calls :meth:`resume_text` or
    :meth:`after_calls`), else ``None``.

    Args:
        out: where text goes; its ``text_seen`` and ``gap`` decide the separator after calls.
    """

    def __init__(self, out: EventBuffer) -> None:
        self._out = out
        self._mode: MarkerMode = "text"
        self._ws = ""  # whitespace held in text mode
        self._mark = ""  # held prefix of a marker
        self._lead = ""  # held opening marker (and the whitespace before it)
        self._wrapper: str | None = None  # closing marker expected after calls; "" for none
        self._lang = ""  # a code fence's language tag
        self._post = ""  # held prefix of a closing marker after a call
        self._post_ws = ""  # whitespace after a call

    # -- interface to the parser --------------------------------------------------------------

    def push(self, ch: str) -> OpenJson | None:
        """Read one character."""
        mode = self._mode
        if mode == "text":
            return self._text_char(ch)
        if mode == "post":
            return self._post_char(ch)
        if mode == "fence":
            return self._fence_char(ch)
        return self._open_char(ch)

    def resume_text(self, *, clear_wrapper: bool) -> None:
        """A JSON candidate ended as text (or broke): read plain text again."""
        if clear_wrapper:
            self._wrapper = None
        self._mode = "text"

    def after_calls(self, whitespace: str = "") -> None:
        """A call (or a run of calls) ended; ``whitespace`` already follows it."""
        self._mode, self._post, self._post_ws = "post", "", whitespace

    def release_whitespace(self) -> None:
        """Emit whitespace held in plain text now (not a held marker prefix)."""
        if self._mode == "text" and self._ws and not self._mark:
            self._out.text(self._ws)
            self._ws = ""

    def finish(self) -> None:
        """End of the stream: what is held is text (whitespace after a call is dropped)."""
        mode = self._mode
        if mode == "text":
            self._out.text(self._ws + self._mark)
        elif mode in ("fence", "open"):
            self._out.text(self._lead)
        else:
            self._out.text(self._post)
        self._ws = self._mark = self._lead = self._post = ""

    # -- the modes ------------------------------------------------------------------------------

    def _text_char(self, ch: str) -> OpenJson | None:
        if self._mark:
            mark = self._mark + ch
            if any(m.startswith(mark) for m in _MARKERS):
                self._mark = mark
                if mark in _MARKERS:
                    self._open_marker(mark)
                return None
            if self._mark == "[":  # not "[TOOL_CALLS]": maybe a list of calls
                self._mark = ""
                lead, self._ws = self._ws, ""
                return OpenJson("[", lead, rest=ch)
            self._out.text(self._ws + self._mark)
            self._ws = self._mark = ""
        if ch in WHITESPACE:
            self._ws += ch
        elif ch == "{":
            lead, self._ws = self._ws, ""
            return OpenJson("{", lead)
        elif ch in "`<[":
            self._mark = ch
        else:
            self._out.text(self._ws + ch)
            self._ws = ""
        return None

    def _open_marker(self, mark: str) -> None:
        self._lead = self._ws + mark
        self._ws = self._mark = ""
        if mark == "```":
            self._mode, self._lang = "fence", ""
            self._wrapper = "```"
        else:
            self._mode = "open"
            self._wrapper = "</tool_call>" if mark == "<tool_call>" else ""

    def _release(self, then: str) -> OpenJson | None:
        """The held opening marker is text after all: emit it and go back to text mode."""
        self._out.text(self._lead)
        self._lead = ""
        self._wrapper = None
        self._mode = "text"
        return self._text_char(then)

    def _fence_char(self, ch: str) -> OpenJson | None:
        if ch == "\n" or ch in "{[":
            if self._lang.strip().lower() in _FENCE_LANGS:
                self._mode = "open"
                return self._open_char(ch)
            return self._release(then=ch)
        if (ch.isalnum() or ch in "_-+ \t\r") and len(self._lang) < 20:
            self._lang += ch
            self._lead += ch
            return None
        return self._release(then=ch)

    def _open_char(self, ch: str) -> OpenJson | None:
        if ch in WHITESPACE:
            self._lead += ch
            return None
        if ch in "{[":
            lead, self._lead = self._lead, ""
            return OpenJson(ch, lead)
        return self._release(then=ch)

    def _post_char(self, ch: str) -> OpenJson | None:
        wrapper = self._wrapper
        if wrapper and wrapper.startswith(self._post + ch):
            self._post += ch
            if self._post == wrapper:  # whitespace before the closing marker was inside it
                self._wrapper, self._post, self._post_ws = None, "", ""
            return None
        if not self._post and ch in WHITESPACE:
            self._post_ws += ch
            return None
        if wrapper is not None and not self._post and ch in "{[":
            return OpenJson(ch, "")  # the next call in the same wrapper
        # Text again. Keep one separator when text came before the calls: "A {call} B" -> "A B".
        pending, self._post = self._post + ch, ""
        self._ws = (self._post_ws or self._out.gap or "") if self._out.text_seen else ""
        self._post_ws = ""
        self._wrapper = None
        self._mode = "text"
        for i, c in enumerate(pending):
            step = self._text_char(c)
            if step is not None:
                return step._replace(rest=step.rest + pending[i + 1 :])
        return None
