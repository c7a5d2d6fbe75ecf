"""Tool calls in model text: the incremental :class:`ToolCallStreamParser` and :func:`parse_text`.

``parse_text`` is the stream parser fed the whole text at once, so a streamed answer and a
non-streamed one always agree. What counts as a call is described in :mod:`cf_llama2.tool_calls`.

Architecture: the parser owns small layers, each with its own state, and wires them; no layer
calls another sideways. Each character goes to the one layer that is reading, which returns a
typed hand-off (:mod:`cf_llama2.tool_calls._state`) when the parser must switch layers::

    text -> MarkerScanner --OpenJson--> JsonCandidate --Broken--> BrokenCall
                 ^  ^                     |     |                     |
                 |  +------ ToText --------+     |                     |
                 +--------- AfterCalls ----------+---------------------+

    JsonCandidate, BrokenCall --calls, arguments, errors--> CallBuilder --> EventBuffer
    MarkerScanner, JsonCandidate --text--> EventBuffer --drain--> feed() / finish()

* :class:`~cf_llama2.tool_calls._markers.MarkerScanner` -- plain text, the markers around calls
  (code fences, ``<tool_call>``, ``[TOOL_CALLS]``) and what follows a call; returns ``OpenJson``
  (first char, the held lead) when a ``{`` or ``[`` may start a call;
* :class:`~cf_llama2.tool_calls._candidates.JsonCandidate` -- one JSON candidate through the
  :class:`~cf_llama2.tool_calls._json_scan.JsonScanner`: a call, a list of calls, or plain JSON
  (released as text); ends with ``ToText`` (maybe with a char to read again as text),
  ``AfterCalls`` or ``Broken`` (a call's JSON broke);
* :class:`~cf_llama2.tool_calls._recovery.BrokenCall` -- the rest of a broken call, kept with it
  up to its closing bracket or a blank line; ends with ``AfterCalls``;
* :class:`~cf_llama2.tool_calls._calls.CallBuilder` -- fed by the two JSON layers: call index,
  id, the unknown-tool check, arguments and errors, and the final finish reason;
* :class:`~cf_llama2.tool_calls._events.EventBuffer` -- the output: merges text and argument
  fragments into as few deltas as possible; remembers whether text came before calls (the
  separator kept after them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..schema import FinishReason, InvalidToolCall, TextDelta, ToolCall, ToolCallDelta
from ..schema.reducer import StreamReducer, finish_tool_call
from ..tools import Tool
from ._calls import CallBuilder
from ._candidates import JsonCandidate
from ._events import EventBuffer
from ._markers import MarkerScanner
from ._recovery import BrokenCall
from ._state import AfterCalls, Broken, JsonStep, OpenJson, ToText
from .shape import new_tool_call_id

__all__ = ["ToolCallStreamParser", "parse_text"]


class ToolCallStreamParser:
    """Split streamed model text into text deltas and tool-call deltas.

    Text streams out as soon as it cannot be the start of a call; only what could start one is
    held back (trailing whitespace, ``{``, ``[``, ````` `` `````, ``<tool_c``, ``[TOOL_C``, and a
    JSON value until its first keys decide it). Once a call is certain, a
    :class:`~cf_llama2.schema.ToolCallDelta` with its ``index``, a new ``id`` and the ``name`` is
    emitted, then the arguments JSON in fragments whose concatenation is exactly the arguments
    object. Partial JSON never reaches the text. A call the parser finds unusable (unknown tool,
    broken or cut-off JSON) carries ``error`` on one of its deltas.

    Feeding a text in any split and reducing the events gives what :func:`parse_text` gives.

    Args:
        tools: when given, call names are checked against them (an unknown name makes the call
            invalid with ``"unknown tool 'x'; known: a, b"``).
        new_id: the id factory (:func:`new_tool_call_id`; tests may pass a deterministic one).

    Example:
        >>> parser = ToolCallStreamParser()
        >>> events = parser.feed('Sure. {"name": "get_time", "argu')
        >>> events += parser.feed('ments": {"tz": "UTC"}}')
        >>> tail, reason = parser.finish("stop")
        >>> [type(e).__name__ for e in events + tail], reason
        (['TextDelta', 'ToolCallDelta', 'ToolCallDelta'], 'tool_calls')
    """

    def __init__(
        self, tools: Sequence[Tool] = (), *, new_id: Callable[[], str] = new_tool_call_id
    ) -> None:
        self.tools = list(tools)
        self._out = EventBuffer()
        self._calls = CallBuilder(self._out, self.tools, new_id)
        self._markers = MarkerScanner(self._out)
        self._candidate: JsonCandidate | None = None  # the JSON candidate being read
        self._broken: BrokenCall | None = None  # the rest of a broken call being read
        self._push: Callable[[str], OpenJson | JsonStep] = self._markers.push  # the reading layer
        self._finished = False

    # -- public API ---------------------------------------------------------------------------

    def feed(self, text: str) -> list[TextDelta | ToolCallDelta]:
        """Add a piece of model text; return the events that are certain now.

        Raises:
            RuntimeError: the parser was already finished.
        """
        if self._finished:
            raise RuntimeError("ToolCallStreamParser.feed() after finish(); make a new parser")
        push, follow = self._push, self._follow
        for ch in text:
            step = push(ch)
            if step is not None:
                follow(step)
                push = self._push
        if self._candidate is not None:
            self._candidate.stream_arguments()
        return self._out.drain()

    def release_whitespace(self) -> list[TextDelta | ToolCallDelta]:
        """Emit whitespace held back in plain text now, as text.

        Whitespace after text is held because it is dropped when a call follows in the text.
        When calls arrive another way (structured ``tool_calls`` on the wire), the held
        whitespace belongs before them; the decoder calls this first. Nothing else is released:
        a held marker prefix or JSON candidate still waits for more text.
        """
        if self._candidate is None and self._broken is None:
            self._markers.release_whitespace()
        return self._out.drain()

    def finish(
        self, finish_reason: FinishReason = "stop"
    ) -> tuple[list[TextDelta | ToolCallDelta], FinishReason]:
        """End of the stream: flush what was held back and give the final finish reason.

        Held text that did not become a call is emitted as text. A call cut off before its JSON
        was complete stays a call (its deltas were already streamed) and gets an error: with
        ``finish_reason="length"`` the error says generation stopped at ``max_tokens``; with
        ``"stop"`` it says the answer ended early. A call whose arguments are complete but whose
        closing ``}`` is missing is complete.

        Args:
            finish_reason: why generation stopped (``"stop"`` or ``"length"``).

        Returns:
            The last events and the final finish reason: ``"length"`` when ``finish_reason``
            was ``"length"`` and a call was cut off, else ``"tool_calls"`` when a valid call was
            emitted, else ``finish_reason`` (``"stop"`` for an input ``"tool_calls"``).

        Raises:
            RuntimeError: called twice.
        """
        if self._finished:
            raise RuntimeError("ToolCallStreamParser.finish() called twice; make a new parser")
        self._finished = True
        if self._candidate is not None:
            self._candidate.finish(finish_reason)
        elif self._broken is not None:
            self._broken.finish()
        else:
            self._markers.finish()
        return self._out.drain(), self._calls.finish_reason(finish_reason)

    # -- wiring the layers ----------------------------------------------------------------------

    def _char(self, ch: str) -> None:
        """Give one character to the layer that is reading, and follow what it hands back."""
        step = self._push(ch)
        if step is not None:
            self._follow(step)

    def _follow(self, step: OpenJson | JsonStep) -> None:
        """Switch layers as a hand-off says (``None``: the same layer reads on)."""
        if isinstance(step, OpenJson):
            self._candidate = JsonCandidate(step.char, step.lead, self._calls, self._out)
            self._push = self._candidate.push
            self._char(step.char)
            for ch in step.rest:
                self._char(ch)
        elif isinstance(step, ToText):
            self._candidate = None
            self._push = self._markers.push
            self._markers.resume_text(clear_wrapper=step.clear_wrapper)
            if step.refeed:
                self._char(step.refeed)
        elif isinstance(step, AfterCalls):
            self._candidate = self._broken = None
            self._push = self._markers.push
            self._markers.after_calls(step.whitespace)
        elif isinstance(step, Broken):
            self._candidate = None
            self._broken = BrokenCall(self._calls, step)
            self._push = self._broken.push
            self._char(step.char)


def parse_text(
    text: str, tools: Sequence[Tool] = ()
) -> tuple[str, list[ToolCall | InvalidToolCall]]:
    """Find the tool calls in a complete model answer.

    Args:
        text: the model's answer.
        tools: when given, call names are checked against them.

    Returns:
        The text outside the calls and the calls (valid and invalid, in the order written).
    """
    parser = ToolCallStreamParser(tools)
    events = parser.feed(text)
    tail, _ = parser.finish("stop")
    reducer = StreamReducer()
    for event in [*events, *tail]:
        reducer.feed(event)
    calls = [
        finish_tool_call(part.id or new_tool_call_id(), part.name, part.arguments, error=part.error)
        for _, part in sorted(reducer.calls.items())
    ]
    return "".join(reducer.text), calls
