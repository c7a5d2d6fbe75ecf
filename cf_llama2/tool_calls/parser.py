"""Tool calls in model text: the incremental :class:`ToolCallStreamParser` and :func:`parse_text`.

``parse_text`` is the stream parser fed the whole text at once, so a streamed answer and a
non-streamed one always agree. What counts as a call is described in :mod:`cf_llama2.tool_calls`.
The parser is built in layers: its fields and output buffering
(:mod:`cf_llama2.tool_calls._state`), JSON candidates (:mod:`cf_llama2.tool_calls._candidates`),
text and markers (:mod:`cf_llama2.tool_calls._markers`); this module adds the public API.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..schema import FinishReason, InvalidToolCall, TextDelta, ToolCall, ToolCallDelta
from ..schema.reducer import StreamReducer, finish_tool_call
from ..tools import Tool
from ._markers import MarkerText
from .shape import new_tool_call_id

__all__ = ["ToolCallStreamParser", "parse_text"]


class ToolCallStreamParser(MarkerText):
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

    # -- public API ---------------------------------------------------------------------------

    def feed(self, text: str) -> list[TextDelta | ToolCallDelta]:
        """Add a piece of model text; return the events that are certain now.

        Raises:
            RuntimeError: the parser was already finished.
        """
        if self._finished:
            raise RuntimeError("ToolCallStreamParser.feed() after finish(); make a new parser")
        for ch in text:
            self._char(ch)
        self._stream_arguments()
        return self._drain()

    def release_whitespace(self) -> list[TextDelta | ToolCallDelta]:
        """Emit whitespace held back in plain text now, as text.

        Whitespace after text is held because it is dropped when a call follows in the text.
        When calls arrive another way (structured ``tool_calls`` on the wire), the held
        whitespace belongs before them; the decoder calls this first. Nothing else is released:
        a held marker prefix or JSON candidate still waits for more text.
        """
        if self._mode == "text" and self._ws and not self._mark:
            self._text(self._ws)
            self._ws = ""
        return self._drain()

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
        if self._mode == "json":
            for event in self._scan.finish():
                self._on_event(event)
        mode = self._mode
        if mode == "json":
            self._finish_json(finish_reason)
        elif mode == "text":
            self._text(self._ws + self._mark)
        elif mode in ("fence", "open"):
            self._text(self._lead)
        elif mode == "post":
            self._text(self._post)
        elif mode == "recover" and self._rec.newline:
            self._args(self._rec.index, "\n")
        self._ws = self._mark = self._lead = self._post = ""
        events = self._drain()
        valid = any(
            isinstance(finish_tool_call("-", s.name, "".join(s.args), error=s.error), ToolCall)
            for s in self._seen.values()
        )
        final: FinishReason
        if self._cut and finish_reason == "length":
            final = "length"
        elif valid:
            final = "tool_calls"
        else:
            final = "stop" if finish_reason == "tool_calls" else finish_reason
        return events, final

    # -- text, markers and what follows a call ------------------------------------------------

    def _char(self, ch: str) -> None:
        mode = self._mode
        if mode == "text":
            self._text_char(ch)
        elif mode == "json":
            self._json_char(ch)
        elif mode == "post":
            self._post_char(ch)
        elif mode == "recover":
            self._recover_char(ch)
        elif mode == "fence":
            self._fence_char(ch)
        else:
            self._open_char(ch)


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
