"""Core results and stream events -> LlamaIndex ``ChatResponse`` / ``CompletionResponse``.

Like other LlamaIndex LLMs, a response carries the token counts in ``additional_kwargs``
(``prompt_tokens``, ``completion_tokens``, ``total_tokens``) and the raw answer in ``raw``: a
dict with ``response``, ``tool_calls``, ``invalid_tool_calls``, ``usage``, ``finish_reason`` and
``model`` (``raw["usage"]`` is what LlamaIndex's token counter reads).

Streams are folded by the core :class:`~cf_llama2.schema.reducer.StreamReducer`, so the last
streamed response is exactly the non-streamed one. Intermediate chunks carry the text so far,
the text ``delta``, and the tool calls so far as ``ToolCallBlock`` whose ``tool_kwargs`` is the
partial JSON text received until then; the final chunk (``delta=""``) carries the complete calls.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from cf_llama2.schema import (
    ChatResult,
    EndEvent,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from cf_llama2.schema.reducer import StreamReducer

from ._messages import assistant_message, invalid_call_to_dict, tool_call_to_openai

__all__ = [
    "ChatStreamConverter",
    "CompletionStreamConverter",
    "chat_response",
    "completion_response",
    "raw_result",
    "usage_kwargs",
]


def usage_kwargs(usage: Usage | None) -> dict[str, Any]:
    """Token counts as LlamaIndex LLMs put them in ``additional_kwargs`` (empty when unknown)."""
    if usage is None:
        return {}
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def raw_result(result: ChatResult) -> dict[str, Any]:
    """The ``raw`` dict of a response: the whole answer, JSON-serialisable."""
    return result.model_dump(mode="json")


def chat_response(result: ChatResult, *, delta: str | None = None) -> ChatResponse:
    """The ``ChatResponse`` for a complete answer (``delta`` is set on a stream's last chunk)."""
    return ChatResponse(
        message=assistant_message(result),
        raw=raw_result(result),
        delta=delta,
        additional_kwargs=usage_kwargs(result.usage),
    )


def completion_response(result: ChatResult, *, delta: str | None = None) -> CompletionResponse:
    """The ``CompletionResponse`` for a complete answer.

    Tool calls (only possible when a completion prompt makes the model emit one) are kept in
    ``additional_kwargs["tool_calls"]`` / ``["invalid_tool_calls"]`` next to the token counts.
    """
    extra = usage_kwargs(result.usage)
    if result.tool_calls:
        extra["tool_calls"] = [tool_call_to_openai(c) for c in result.tool_calls]
    if result.invalid_tool_calls:
        extra["invalid_tool_calls"] = [invalid_call_to_dict(c) for c in result.invalid_tool_calls]
    return CompletionResponse(
        text=result.response, raw=raw_result(result), delta=delta, additional_kwargs=extra
    )


class _Stream:
    """Shared state of the two stream converters: the core reducer plus the text so far."""

    def __init__(self, model: str = "") -> None:
        self.reducer = StreamReducer(model=model)
        self.text = ""

    def feed(self, event: StreamEvent) -> bool:
        """Add an event; ``True`` when it changes what a chunk shows (text or tool calls)."""
        self.reducer.feed(event)
        if isinstance(event, TextDelta):
            self.text += event.text
            return bool(event.text)
        return isinstance(event, ToolCallDelta)

    def result(self) -> ChatResult:
        """The folded answer; raises ``IncompleteStreamError`` when the end event is missing."""
        return self.reducer.result()

    @property
    def done(self) -> bool:
        return self.reducer.done


class ChatStreamConverter:
    """Turns a core event stream into ``ChatResponse`` chunks.

    Example:
        >>> conv = ChatStreamConverter(model="m")
        >>> chunks = [c for e in events if (c := conv.feed(e)) is not None]
        >>> conv.finish()  # raises IncompleteStreamError when the stream was cut short
    """

    def __init__(self, model: str = "") -> None:
        self._state = _Stream(model)

    def feed(self, event: StreamEvent) -> ChatResponse | None:
        """The chunk for ``event``, or ``None`` when it shows nothing new (usage, empty text)."""
        if isinstance(event, EndEvent):
            self._state.feed(event)
            return chat_response(self._state.result(), delta="")
        if not self._state.feed(event):
            return None
        delta = event.text if isinstance(event, TextDelta) else ""
        return ChatResponse(
            message=self._partial_message(),
            delta=delta,
            raw=event.model_dump(mode="json"),
            additional_kwargs=usage_kwargs(self._state.reducer.usage),
        )

    def _partial_message(self) -> ChatMessage:
        blocks: list[Any] = [TextBlock(text=self._state.text)]
        for index in sorted(self._state.reducer.calls):
            part = self._state.reducer.calls[index]
            blocks.append(
                ToolCallBlock(
                    tool_call_id=part.id,
                    tool_name=part.name or "",
                    tool_kwargs=part.arguments,
                )
            )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)

    def finish(self) -> ChatResult:
        """The folded answer once the stream is over.

        Raises:
            IncompleteStreamError: the stream ended without its end event.
        """
        return self._state.result()


class CompletionStreamConverter:
    """Turns a core event stream into ``CompletionResponse`` chunks (like the chat one)."""

    def __init__(self, model: str = "") -> None:
        self._state = _Stream(model)

    def feed(self, event: StreamEvent) -> CompletionResponse | None:
        """The chunk for ``event``, or ``None`` when it adds no text."""
        if isinstance(event, EndEvent):
            self._state.feed(event)
            return completion_response(self._state.result(), delta="")
        if not self._state.feed(event) or not isinstance(event, TextDelta):
            return None
        return CompletionResponse(
            text=self._state.text,
            delta=event.text,
            raw=event.model_dump(mode="json"),
            additional_kwargs=usage_kwargs(self._state.reducer.usage),
        )

    def finish(self) -> ChatResult:
        """The folded answer; raises ``IncompleteStreamError`` when the stream was cut short."""
        return self._state.result()
