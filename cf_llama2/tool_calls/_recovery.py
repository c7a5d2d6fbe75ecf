"""The stream parser's broken-call layer: the rest of a call whose JSON broke stays with the call.

After a call's JSON breaks (:class:`~cf_llama2.tool_calls._state.Broken`), what follows is added
to that call's arguments, as written, up to its closing bracket or a blank line, instead of
leaking into the text. The call already carries the error.
"""

from __future__ import annotations

from ._calls import CallBuilder
from ._state import AfterCalls, Broken

__all__ = ["BrokenCall"]


class BrokenCall:
    """Keeps the rest of broken call ``index`` with it, one character at a time.

    Args:
        calls: the call builder the characters go to (as arguments of the call).
        broken: where the call broke: its index, the brackets still open, inside a string or not.
    """

    def __init__(self, calls: CallBuilder, broken: Broken) -> None:
        self._calls = calls
        self._index = broken.call_index
        self._depth = broken.depth
        self._in_string = broken.in_string
        self._escape = False
        self._newline = False  # a newline is held: a second one ends the call

    def push(self, ch: str) -> AfterCalls | None:
        """Read one character; :class:`AfterCalls` when the broken call is over."""
        if self._newline:
            self._newline = False
            if ch == "\n":  # a blank line ends the broken call
                return AfterCalls("\n\n")
            self._calls.args(self._index, "\n")
        if ch == "\n":
            self._newline = True
            return None
        self._calls.args(self._index, ch)
        if self._in_string:
            if self._escape:
                self._escape = False
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                self._in_string = False
        elif ch == '"':
            self._in_string = True
        elif ch in "{[":
            self._depth += 1
        elif ch in "}]":
            self._depth -= 1
            if self._depth <= 0:
                return AfterCalls()
        return None

    def finish(self) -> None:
        """End of the stream: a held newline belongs to the call."""
        if self._newline:
            self._calls.args(self._index, "\n")
