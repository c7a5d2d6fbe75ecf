"""Fold stream events into a :class:`~cf_llama2.schema.ChatResult`.

There is one reducer: the non-streaming paths of every backend produce events and return what
this reducer returns, so a streamed answer and a non-streamed one can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field

from ..errors import IncompleteStreamError
from . import (
    ChatResult,
    EndEvent,
    FinishReason,
    InvalidToolCall,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

__all__ = ["StreamReducer", "areduce_events", "finish_tool_call", "reduce_events"]


@dataclass
class _PartialCall:
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    error: str | None = None


def finish_tool_call(
    call_id: str,
    name: str | None,
    arguments: str,
    *,
    truncated: bool = False,
    error: str | None = None,
) -> ToolCall | InvalidToolCall:
    """Turn the accumulated pieces of one call into a valid or an invalid tool call.

    Args:
        call_id: the call's id.
        name: the tool name (``None`` when it never arrived).
        arguments: the concatenated JSON text of the arguments (empty means ``{}``).
        truncated: generation stopped on ``max_tokens``; named in the error when it fails.
        error: a parser's verdict that the call is unusable (``ToolCallDelta.error``); the
            call is then invalid with this reason.
    """
    if error:
        return InvalidToolCall(id=call_id, name=name, arguments=arguments, error=error)
    why_cut = " (generation stopped at max_tokens: finish_reason='length')" if truncated else ""
    if not name:
        return InvalidToolCall(
            id=call_id, name=None, arguments=arguments, error=f"tool call has no name{why_cut}"
        )
    text = arguments.strip()
    if not text:
        return ToolCall(id=call_id, name=name, arguments={})
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return InvalidToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            error=f"arguments are not valid JSON: {exc.msg} at char {exc.pos}{why_cut}",
        )
    if not isinstance(value, dict):
        return InvalidToolCall(
            id=call_id,
            name=name,
            arguments=arguments,
            error=f"arguments must be a JSON object; got {type(value).__name__}",
        )
    return ToolCall(id=call_id, name=name, arguments=value)


@dataclass
class StreamReducer:
    """Accumulates events; :meth:`result` gives the final answer once the end event arrived."""

    model: str = ""
    text: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: FinishReason | None = None

    def feed(self, event: StreamEvent) -> None:
        """Add one event."""
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.calls.setdefault(event.index, _PartialCall())
            if event.id and not call.id:
                call.id = event.id
            if event.name:
                call.name = (call.name or "") + event.name
            call.arguments += event.arguments
            if event.error and not call.error:
                call.error = event.error
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        elif isinstance(event, EndEvent):
            self.finish_reason = event.finish_reason
            if event.model:
                self.model = event.model

    @property
    def done(self) -> bool:
        """Whether the end event has arrived."""
        return self.finish_reason is not None

    def result(self) -> ChatResult:
        """The folded answer.

        Raises:
            IncompleteStreamError: no end event arrived (the stream was cut short).
        """
        if self.finish_reason is None:
            raise IncompleteStreamError(
                "the stream ended without its end event; the answer is truncated",
                partial_text="".join(self.text),
            )
        valid: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        truncated = self.finish_reason == "length"
        for index in sorted(self.calls):
            part = self.calls[index]
            done = finish_tool_call(
                part.id or f"call_{index}",
                part.name,
                part.arguments,
                truncated=truncated,
                error=part.error,
            )
            (valid if isinstance(done, ToolCall) else invalid).append(done)  # type: ignore[arg-type]
        return ChatResult(
            response="".join(self.text),
            tool_calls=valid,
            invalid_tool_calls=invalid,
            usage=self.usage,
            finish_reason=self.finish_reason,
            model=self.model,
        )


def reduce_events(events: Iterable[StreamEvent], *, model: str = "") -> ChatResult:
    """Fold a complete event stream into a result.

    Args:
        events: the stream events of one answer, ending with an ``EndEvent``.
        model: the model name to report when the stream names none.

    Returns:
        The ``ChatResult`` the stream adds up to: text, tool calls (invalid ones kept with
        their reason), usage and finish reason.

    Raises:
        IncompleteStreamError: the events end without an ``EndEvent``.
    """
    reducer = StreamReducer(model=model)
    for event in events:
        reducer.feed(event)
    return reducer.result()


async def areduce_events(events: AsyncIterable[StreamEvent], *, model: str = "") -> ChatResult:
    """Async twin of :func:`reduce_events`."""
    reducer = StreamReducer(model=model)
    async for event in events:
        reducer.feed(event)
    return reducer.result()
