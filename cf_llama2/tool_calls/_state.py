"""Typed states of the stream parser's layers and the hand-offs between them.

The layers (see :mod:`cf_llama2.tool_calls.parser`) never call into each other sideways: a layer
that is done with a character returns one of the hand-offs below, and the parser acts on it.

* :class:`OpenJson` -- the marker scanner (:mod:`cf_llama2.tool_calls._markers`) saw the start of
  a JSON candidate;
* :class:`ToText`, :class:`AfterCalls`, :class:`Broken` -- the JSON candidate
  (:mod:`cf_llama2.tool_calls._candidates`) is over: what follows is text, what follows calls, or
  the rest of a broken call (:mod:`cf_llama2.tool_calls._recovery`, which ends with
  :class:`AfterCalls`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = [
    "AfterCalls",
    "Broken",
    "CallObj",
    "JsonStep",
    "MarkerMode",
    "OpenJson",
    "Phase",
    "Region",
    "ToText",
]

MarkerMode = Literal["text", "fence", "open", "post"]
"""What the marker scanner is reading: plain text, a code fence's language tag, the space after an
opening marker, or what follows a call."""
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


class OpenJson(NamedTuple):
    """Marker scanner -> parser: a JSON candidate starts with ``char`` (``{`` or ``[``).

    ``lead`` is the held text before it (whitespace, an opening marker), released as text if the
    candidate is not a call; ``rest`` are characters already read after ``char`` that belong to
    the candidate.
    """

    char: str
    lead: str
    rest: str = ""


class ToText(NamedTuple):
    """JSON candidate -> parser: the candidate is over; what follows is text.

    ``clear_wrapper``: forget the closing marker expected after calls (the candidate was not a
    call, or broke after one). ``refeed``: the character that ended it, to read again as text
    (``""`` for none).
    """

    clear_wrapper: bool
    refeed: str = ""


class AfterCalls(NamedTuple):
    """JSON candidate or broken call -> parser: a call (or a run of calls) ended.

    ``whitespace`` is what already follows it (a blank line that ended a broken call).
    """

    whitespace: str = ""


class Broken(NamedTuple):
    """JSON candidate -> parser: call ``call_index`` broke at ``char``; keep the rest with it.

    ``depth`` is the number of brackets still open, ``in_string`` whether it broke inside a string.
    """

    call_index: int
    depth: int
    in_string: bool
    char: str


JsonStep = ToText | AfterCalls | Broken | None
"""What a JSON candidate hands back after a character (``None``: it goes on)."""
