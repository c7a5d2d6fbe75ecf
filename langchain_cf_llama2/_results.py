"""Pure converters from core results and stream events to LangChain messages.

A :class:`cf_llama2.ChatResult` becomes an ``AIMessage`` with ``tool_calls``,
``invalid_tool_calls``, ``usage_metadata`` and ``response_metadata`` (``model_name``,
``finish_reason``). A stream of core events becomes ``AIMessageChunk`` objects: text as content,
tool calls as ``tool_call_chunks`` (name and id on a call's first chunk only, an int ``index``),
and one last chunk (``chunk_position="last"``) with the usage and the response metadata.
"""

from __future__ import annotations

from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk

from cf_llama2.schema import ChatResult, EndEvent, StreamEvent, TextDelta, ToolCallDelta, Usage
from cf_llama2.schema import UsageEvent as CoreUsageEvent
from cf_llama2.schema.reducer import StreamReducer

__all__ = [
    "ChunkConverter",
    "response_metadata",
    "result_to_message",
    "usage_to_metadata",
]


def usage_to_metadata(usage: Usage | None) -> UsageMetadata | None:
    """Workers AI usage -> LangChain ``UsageMetadata`` (``None`` when the backend sent none)."""
    if usage is None:
        return None
    counts = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }
    # A cast: the details keys are NotRequired, which mypy misreads for a 3.10 target.
    return cast("UsageMetadata", counts)


def response_metadata(model_name: str, finish_reason: str) -> dict[str, Any]:
    """The ``response_metadata`` of a message (or of the last chunk of a stream)."""
    return {"model_name": model_name, "finish_reason": finish_reason}


def result_to_message(result: ChatResult, *, model_name: str = "") -> AIMessage:
    """Convert a complete core result into an ``AIMessage``.

    Args:
        result: the core result.
        model_name: reported in ``response_metadata`` when the result names no model.
    """
    calls = [tool_call(name=c.name, args=dict(c.arguments), id=c.id) for c in result.tool_calls]
    invalid = [
        invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=c.error)
        for c in result.invalid_tool_calls
    ]
    usage = usage_to_metadata(result.usage)
    message = AIMessage(
        content=result.response,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        response_metadata=response_metadata(result.model or model_name, result.finish_reason),
    )
    if usage is not None:
        message.usage_metadata = usage
    return message


class ChunkConverter:
    """Turns core stream events into ``AIMessageChunk`` objects, one event at a time.

    Usage is held back until the end event, so that exactly one chunk (the last) carries the
    usage, the model name and the finish reason. The events are also folded by the core
    :class:`~cf_llama2.schema.reducer.StreamReducer`, so :meth:`result` equals what the non-streamed
    call would return, and a stream cut short raises
    :class:`~cf_llama2.errors.IncompleteStreamError`.
    """

    def __init__(self, model_name: str = "") -> None:
        self.model_name = model_name
        self.reducer = StreamReducer(model=model_name)

    def convert(self, event: StreamEvent) -> AIMessageChunk | None:
        """The chunk for ``event``, or ``None`` for an event that only updates state."""
        self.reducer.feed(event)
        if isinstance(event, TextDelta):
            if not event.text:
                return None
            return AIMessageChunk(content=event.text)
        if isinstance(event, ToolCallDelta):
            return AIMessageChunk(
                content="",
                tool_call_chunks=[
                    tool_call_chunk(
                        name=event.name or None,
                        args=event.arguments,
                        id=event.id or None,
                        index=event.index,
                    )
                ],
            )
        if isinstance(event, CoreUsageEvent):
            return None
        if isinstance(event, EndEvent):
            chunk = AIMessageChunk(
                content="",
                response_metadata=response_metadata(
                    event.model or self.model_name, event.finish_reason
                ),
                chunk_position="last",
            )
            usage = usage_to_metadata(self.reducer.usage)
            if usage is not None:
                chunk.usage_metadata = usage
            return chunk
        return None  # pragma: no cover - the event union is closed

    def result(self) -> ChatResult:
        """The folded result of every event converted so far.

        Raises:
            cf_llama2.errors.IncompleteStreamError: no end event arrived.
        """
        return self.reducer.result()
