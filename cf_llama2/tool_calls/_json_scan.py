"""An incremental JSON scanner: reports where values and keys start and end, one char at a time.

The stream parser (:mod:`cf_llama2.tool_calls.parser`) feeds it model text that may be a tool
call, to decide early (from the first keys) whether it is one and to stream the arguments while
they arrive, and to name the problem and position when the JSON breaks.
"""

from __future__ import annotations

import json
import re
from typing import Literal, NamedTuple

__all__ = [
    "WHITESPACE",
    "Drop",
    "End",
    "JsonScanner",
    "Key",
    "ScanError",
    "ScanEvent",
    "ScanState",
    "Start",
]

ScanState = Literal[
    "value",
    "value_or_end",
    "key_or_end",
    "key",
    "colon",
    "after",
    "string",
    "escape",
    "uhex",
    "literal",
    "done",
    "dead",
    "",
]
"""Where the scanner is: expecting a value/key/colon/separator, inside a string, escape or
literal, after the whole value (``done``) or after an error (``dead``; ``""`` = never failed)."""


class Start(NamedTuple):
    """A value begins at ``depth`` (the number of enclosing containers) with ``char``."""

    kind: Literal["start"]
    depth: int
    char: str


class Key(NamedTuple):
    """An object key at ``depth`` is complete."""

    kind: Literal["key"]
    depth: int
    key: str


class End(NamedTuple):
    """A value at ``depth`` ended; ``stop`` is the offset just after it."""

    kind: Literal["end"]
    depth: int
    stop: int


class Drop(NamedTuple):
    """The comma at ``offset`` was a trailing comma (accepted, to be left out)."""

    kind: Literal["drop"]
    offset: int


class ScanError(NamedTuple):
    """The text is not JSON; the scanner is dead."""

    kind: Literal["error"]
    message: str


ScanEvent = Start | Key | End | Drop | ScanError
"""What :meth:`JsonScanner.push` reports (named tuples: they compare equal to plain tuples)."""

WHITESPACE = " \t\r\n"
"""JSON's whitespace characters (also what the stream parser holds back around calls)."""
_LITERAL_CHARS = frozenset("0123456789+-.eEtruefalsn")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


class JsonScanner:
    """Push JSON text one character at a time; get structural events back.

    Events (:data:`ScanEvent` named tuples): ``("start", depth, char)`` a value begins
    (``depth`` = number of enclosing containers); ``("key", depth, key)`` an object key is
    complete; ``("end", depth, stop)`` a value ended (``stop`` = offset just after it);
    ``("drop", offset)`` the comma at ``offset`` was a trailing comma (``[1,]``, ``{"a": 1,}``),
    accepted and to be left out; ``("error", message)`` the text is not JSON (the scanner is then
    dead). Offsets count characters pushed, from 0.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.state: ScanState = "value"
        self.pos = -1
        self.in_key = False
        self.key: list[str] = []
        self.lit: list[str] = []
        self.hex = 0
        self.comma: int | None = None  # a ',' not yet followed by the next token
        self.failed_in: ScanState = ""  # the state the scanner was in when it met an error

    def _keep(self, ch: str) -> None:
        if self.in_key:
            self.key.append(ch)

    def push(self, ch: str) -> list[ScanEvent]:
        """Push one character; return the events it completes (often none)."""
        self.pos += 1
        out: list[ScanEvent] = []
        self._step(ch, out)
        return out

    def finish(self) -> list[ScanEvent]:
        """End of input: a trailing number/literal ends; nothing else can."""
        out: list[ScanEvent] = []
        if self.state == "literal":
            self._end_literal(out, self.pos + 1)
        return out

    def _error(self, out: list[ScanEvent], message: str) -> None:
        self.failed_in = self.state
        self.state = "dead"
        out.append(ScanError("error", message))

    def _step(self, ch: str, out: list[ScanEvent]) -> None:
        st = self.state
        if st in ("string", "escape", "uhex"):
            self._string_char(ch, st, out)
            return
        if st == "literal":
            if ch in _LITERAL_CHARS:
                self.lit.append(ch)
                return
            if not self._end_literal(out, self.pos):
                return
            st = self.state
        if st in ("done", "dead"):
            self._error(out, "text after the end of the JSON value")
            return
        if ch in WHITESPACE:
            return
        comma, self.comma = self.comma, None
        if st in ("value", "value_or_end"):
            self._value_char(ch, st, comma, out)
        elif st in ("key_or_end", "key"):
            self._key_char(ch, comma, out)
        elif st == "colon":
            if ch == ":":
                self.state = "value"
            else:
                self._error(out, f"expected ':' after a key, got {ch!r}")
        elif st == "after":
            self._after_char(ch, out)

    def _string_char(self, ch: str, st: ScanState, out: list[ScanEvent]) -> None:
        """A character inside a string: plain, after a backslash, or in a ``\\u`` escape."""
        if st == "string":
            if ch == '"':
                self._end_string(out)
            elif ch == "\\":
                self.state = "escape"
                self._keep(ch)
            elif ch < " ":
                self._error(out, f"raw control character {ch!r} in a string (escape it)")
            else:
                self._keep(ch)
        elif st == "escape":
            if ch in '"\\/bfnrt':
                self.state = "string"
            elif ch == "u":
                self.state, self.hex = "uhex", 0
            else:
                self._error(out, f"invalid escape '\\{ch}' in a string")
                return
            self._keep(ch)
        elif ch in "0123456789abcdefABCDEF":
            self.hex += 1
            self._keep(ch)
            if self.hex == 4:
                self.state = "string"
        else:
            self._error(out, f"invalid \\u escape: {ch!r} is not a hex digit")

    def _close(self, comma: int | None, out: list[ScanEvent]) -> None:
        """Close the innermost object or list (a trailing comma before it is dropped)."""
        if comma is not None:
            out.append(Drop("drop", comma))
        self.stack.pop()
        self._value_done(out, self.pos + 1)

    def _value_char(self, ch: str, st: ScanState, comma: int | None, out: list[ScanEvent]) -> None:
        if ch == "]" and (st == "value_or_end" or (comma is not None and self.stack[-1] == "[")):
            self._close(comma, out)
        else:
            self._start_value(ch, out)

    def _key_char(self, ch: str, comma: int | None, out: list[ScanEvent]) -> None:
        if ch == '"':
            self.in_key, self.key, self.state = True, [], "string"
        elif ch == "}":
            self._close(comma, out)
        else:
            self._error(out, f"expected a double-quoted key, got {ch!r}")

    def _after_char(self, ch: str, out: list[ScanEvent]) -> None:
        top = self.stack[-1]
        close = "}" if top == "{" else "]"
        if ch == ",":
            self.state = "key" if top == "{" else "value"
            self.comma = self.pos
        elif ch == close:
            self.stack.pop()
            self._value_done(out, self.pos + 1)
        else:
            self._error(out, f"expected ',' or {close!r}, got {ch!r}")

    def _start_value(self, ch: str, out: list[ScanEvent]) -> None:
        depth = len(self.stack)
        if ch == "{":
            out.append(Start("start", depth, ch))
            self.stack.append("{")
            self.state = "key_or_end"
        elif ch == "[":
            out.append(Start("start", depth, ch))
            self.stack.append("[")
            self.state = "value_or_end"
        elif ch == '"':
            out.append(Start("start", depth, ch))
            self.in_key, self.key, self.state = False, [], "string"
        elif ch in "-0123456789tfn":
            out.append(Start("start", depth, ch))
            self.lit, self.state = [ch], "literal"
        else:
            self._error(out, f"expected a JSON value, got {ch!r}")

    def _end_string(self, out: list[ScanEvent]) -> None:
        if self.in_key:
            self.in_key = False
            self.state = "colon"
            out.append(Key("key", len(self.stack), json.loads('"' + "".join(self.key) + '"')))
        else:
            self._value_done(out, self.pos + 1)

    def _end_literal(self, out: list[ScanEvent], stop: int) -> bool:
        text = "".join(self.lit)
        if text in ("true", "false", "null") or _NUMBER.fullmatch(text):
            self._value_done(out, stop)
            return True
        self._error(out, f"invalid literal {text!r} (JSON has true, false, null and numbers)")
        return False

    def _value_done(self, out: list[ScanEvent], stop: int) -> None:
        depth = len(self.stack)
        out.append(End("end", depth, stop))
        self.state = "done" if depth == 0 else "after"
