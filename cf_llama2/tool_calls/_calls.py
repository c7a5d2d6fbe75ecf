"""The stream parser's call builder: numbers the calls it is told about and emits their deltas.

The JSON candidate layer (:mod:`cf_llama2.tool_calls._candidates`) and the broken-call layer
(:mod:`cf_llama2.tool_calls._recovery`) decide *what* is a call; :class:`CallBuilder` gives each
call its index and id, checks its name against the tools, writes its deltas to the
:class:`~cf_llama2.tool_calls._events.EventBuffer`, and remembers what it emitted to compute the
final finish reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..schema import FinishReason, ToolCall
from ..schema.reducer import finish_tool_call
from ..tools import Tool
from ._events import EventBuffer
from .shape import unknown_tool_error

__all__ = ["CallBuilder", "Seen"]


@dataclass
class Seen:
    """What was emitted for one call index (to compute the final finish reason)."""

    name: str | None
    args: list[str] = field(default_factory=list)
    error: str | None = None


class CallBuilder:
    """Index, id, name check and deltas of the calls found in the text.

    Args:
        out: where the deltas go.
        tools: when given, a call name that is not one of them makes the call invalid.
        new_id: the id factory.
    """

    def __init__(self, out: EventBuffer, tools: Sequence[Tool], new_id: Callable[[], str]) -> None:
        self._out = out
        self._tools = list(tools)
        self._tool_names = {t.name for t in self._tools}
        self._new_id = new_id
        self._seen: dict[int, Seen] = {}
        self._count = 0
        self._cut = False

    def open(self, name: str | None, error: str | None = None) -> int:
        """Start the next call, named ``name`` (maybe with an ``error``); return its index.

        A name that is not one of the tools (when tools were given) gets the unknown-tool error.
        """
        index = self._count
        self._count += 1
        if error is None and name and self._tool_names and name not in self._tool_names:
            error = unknown_tool_error(name, self._tools)
        self._seen[index] = Seen(name=name or None, error=error)
        self._out.call(index, self._new_id(), name or None, error)
        return index

    def args(self, index: int, text: str) -> None:
        """Add a fragment of the arguments of call ``index``."""
        if not text:
            return
        self._seen[index].args.append(text)
        self._out.args(index, text)

    def fail(self, index: int, error: str) -> None:
        """Make the already started call ``index`` invalid with ``error``."""
        self._seen[index].error = error
        self._out.error(index, error)

    def cut_off(self) -> None:
        """Note that a call was cut off by the end of the stream."""
        self._cut = True

    def finish_reason(self, finish_reason: FinishReason) -> FinishReason:
        """The final finish reason, given why generation stopped (see ``finish``)."""
        valid = any(
            isinstance(finish_tool_call("-", s.name, "".join(s.args), error=s.error), ToolCall)
            for s in self._seen.values()
        )
        if self._cut and finish_reason == "length":
            return "length"
        if valid:
            return "tool_calls"
        return "stop" if finish_reason == "tool_calls" else finish_reason
