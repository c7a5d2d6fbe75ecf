"""The stream parser's text layer: plain text, the markers around calls, and what follows a call.

Text streams out as soon as it cannot start a call. Held back: trailing whitespace, a ``{`` or
``[`` (handed to the JSON layer, :mod:`cf_llama2.tool_calls._candidates`), and a prefix of an
opening
marker (a code fence with an allowed language tag, ``<tool_call>``, ``[TOOL_CALLS]``). After a
call, a closing marker is dropped, another call in the same wrapper continues the run, and
anything else is text again (with one separator kept when text came before the calls).
"""

from __future__ import annotations

from ._candidates import JsonCandidates
from ._json_scan import WHITESPACE

__all__ = ["MarkerText"]

_MARKERS = ("```", "<tool_call>", "[TOOL_CALLS]")
_FENCE_LANGS = ("", "json", "tool_call", "tool_calls", "tool_code")


class MarkerText(JsonCandidates):
    """Text, markers and what follows a call (the ``text``, ``fence``, ``open``, ``post`` modes)."""

    # -- text, markers and what follows a call ------------------------------------------------

    def _text_char(self, ch: str) -> None:
        if self._mark:
            mark = self._mark + ch
            if any(m.startswith(mark) for m in _MARKERS):
                self._mark = mark
                if mark in _MARKERS:
                    self._open_marker(mark)
                return
            if self._mark == "[":  # not "[TOOL_CALLS]": maybe a list of calls
                self._mark = ""
                lead, self._ws = self._ws, ""
                self._start_json("[", lead=lead)
                self._json_char(ch)
                return
            self._text(self._ws + self._mark)
            self._ws = self._mark = ""
        if ch in WHITESPACE:
            self._ws += ch
        elif ch == "{":
            lead, self._ws = self._ws, ""
            self._start_json("{", lead=lead)
        elif ch in "`<[":
            self._mark = ch
        else:
            self._text(self._ws + ch)
            self._ws = ""

    def _open_marker(self, mark: str) -> None:
        self._lead = self._ws + mark
        self._ws = self._mark = ""
        if mark == "```":
            self._mode, self._lang = "fence", ""
            self._wrapper = "```"
        else:
            self._mode = "open"
            self._wrapper = "</tool_call>" if mark == "<tool_call>" else ""

    def _release(self, then: str) -> None:
        """The held opening marker is text after all: emit it and go back to text mode."""
        self._text(self._lead)
        self._lead = ""
        self._wrapper = None
        self._mode = "text"
        self._text_char(then)

    def _fence_char(self, ch: str) -> None:
        if ch == "\n" or ch in "{[":
            if self._lang.strip().lower() in _FENCE_LANGS:
                self._mode = "open"
                self._open_char(ch)
            else:
                self._release(then=ch)
        elif (ch.isalnum() or ch in "_-+ \t\r") and len(self._lang) < 20:
            self._lang += ch
            self._lead += ch
        else:
            self._release(then=ch)

    def _open_char(self, ch: str) -> None:
        if ch in WHITESPACE:
            self._lead += ch
        elif ch in "{[":
            lead, self._lead = self._lead, ""
            self._start_json(ch, lead=lead)
        else:
            self._release(then=ch)

    def _post_char(self, ch: str) -> None:
        wrapper = self._wrapper
        if wrapper and wrapper.startswith(self._post + ch):
            self._post += ch
            if self._post == wrapper:  # whitespace before the closing marker was inside it
                self._wrapper, self._post, self._post_ws = None, "", ""
            return
        if not self._post and ch in WHITESPACE:
            self._post_ws += ch
            return
        if wrapper is not None and not self._post and ch in "{[":
            self._start_json(ch, lead="")  # the next call in the same wrapper
            return
        # Text again. Keep one separator when text came before the calls: "A {call} B" -> "A B".
        pending, self._post = self._post, ""
        self._ws = (self._post_ws or self._gap or "") if self._text_seen else ""
        self._post_ws = ""
        self._wrapper = None
        self._mode = "text"
        for c in pending + ch:
            self._text_char(c)
