"""Pure converters from LangChain messages to core :class:`cf_llama2.Message` objects.

System, human, AI (with ``tool_calls``), tool, function and generic chat messages are supported.
Content may be a string or a list of text blocks; any other block (image, audio, file...) raises
:class:`~cf_llama2.errors.RequestValidationError` naming the block type, instead of being dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from cf_llama2.errors import RequestValidationError
from cf_llama2.prompt import name_tool_results
from cf_llama2.schema import Message, ToolCall

__all__ = ["CHAT_ROLES", "content_to_text", "message_to_core", "messages_to_core"]

CHAT_ROLES: dict[str, str] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "function": "tool",
}
"""Roles accepted in a :class:`~langchain_core.messages.ChatMessage`, mapped to core roles."""

_TEXT_BLOCKS = ("text", "text-plain")
# Blocks that repeat what ``AIMessage.tool_calls`` (or the reasoning trace) already carries.
_AI_SKIPPED_BLOCKS = (
    "tool_use",
    "tool_call",
    "tool_call_chunk",
    "invalid_tool_call",
    "server_tool_call",
    "reasoning",
    "thinking",
)


_TEXT_ONLY_FIX = (
    "Llama 2 chat takes text only. Pass the content as a string or as text blocks "
    "({'type': 'text', 'text': ...}); describe images, audio or files in text instead."
)
_MESSAGE_TYPES = "a SystemMessage, HumanMessage, AIMessage, ToolMessage or ChatMessage"


def content_to_text(content: str | list[str | dict[str, Any]], *, where: str = "content") -> str:
    """Join string content or a list of text blocks into one string.

    Args:
        content: a message's ``content``.
        where: the name used in errors (e.g. ``"messages[2].content"``).

    Raises:
        RequestValidationError: a block that is not text (images, audio, files...).
    """
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for i, block in enumerate(content):
        if isinstance(block, str):
            parts.append(block)
            continue
        if not isinstance(block, Mapping):
            kind = type(block).__name__
            limit = "a string or a content block dict"
            raise RequestValidationError(field=f"{where}[{i}]", limit=limit, value=kind, got=kind)
        kind = block.get("type")
        if kind in _TEXT_BLOCKS:
            parts.append(str(block.get("text", "")))
            continue
        raise RequestValidationError(
            field=f"{where}[{i}].type", limit="'text'", value=kind, fix=_TEXT_ONLY_FIX
        )
    return "".join(parts)


def _ai_content(message: AIMessage, where: str) -> str:
    content = message.content
    if isinstance(content, list):
        content = [
            b
            for b in content
            if not (isinstance(b, Mapping) and b.get("type") in _AI_SKIPPED_BLOCKS)
        ]
    text = content_to_text(content, where=where)
    # Calls that failed to parse stay visible to the model as the text it wrote.
    for bad in message.invalid_tool_calls:
        raw = json.dumps({"name": bad.get("name"), "arguments": bad.get("args")})
        text = f"{text}\n{raw}" if text else raw
    return text


def _core_calls(message: AIMessage, where: str) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for i, call in enumerate(message.tool_calls):
        args = call.get("args") or {}
        if not isinstance(args, Mapping):
            kind = type(args).__name__
            field = f"{where}.tool_calls[{i}].args"
            raise RequestValidationError(field=field, limit="a dict", value=kind, got=kind)
        call_id = call.get("id") or f"call_{i}"
        calls.append(ToolCall(id=call_id, name=call["name"], arguments=dict(args)))
    return calls


def _tool_result_text(message: ToolMessage | FunctionMessage, where: str) -> str:
    text = content_to_text(message.content, where=where)
    if isinstance(message, ToolMessage) and message.status == "error":
        text = f"Error: {text}"
    return text


def message_to_core(message: BaseMessage, *, index: int = 0) -> Message:
    """Convert one LangChain message to a core :class:`~cf_llama2.schema.Message`.

    Args:
        message: the LangChain message.
        index: its position, used in error messages.

    Raises:
        RequestValidationError: an unsupported message type, role or content block.
    """
    where = f"messages[{index}]"
    text_where = f"{where}.content"
    if isinstance(message, SystemMessage):
        return Message(role="system", content=content_to_text(message.content, where=text_where))
    if isinstance(message, HumanMessage):
        return Message(role="user", content=content_to_text(message.content, where=text_where))
    if isinstance(message, AIMessage):
        return Message(
            role="assistant",
            content=_ai_content(message, text_where),
            tool_calls=_core_calls(message, where),
        )
    if isinstance(message, ToolMessage):
        return Message(
            role="tool",
            content=_tool_result_text(message, text_where),
            tool_call_id=message.tool_call_id,
            name=message.name,
        )
    if isinstance(message, FunctionMessage):
        return Message(
            role="tool", content=_tool_result_text(message, text_where), name=message.name
        )
    if isinstance(message, ChatMessage):
        role = CHAT_ROLES.get(message.role.strip().lower())
        if role is None:
            raise RequestValidationError(
                f"{where}.role {message.role!r} is not a chat role; use one of "
                f"{', '.join(sorted(CHAT_ROLES))}",
                field=f"{where}.role",
                value=message.role,
                limit=", ".join(sorted(CHAT_ROLES)),
            )
        return Message(role=role, content=content_to_text(message.content, where=text_where))  # type: ignore[arg-type]
    kind = type(message).__name__
    raise RequestValidationError(field=where, limit=_MESSAGE_TYPES, value=kind, got=kind)


def messages_to_core(messages: Sequence[BaseMessage]) -> list[Message]:
    """Convert a conversation; tool results are named after the call they answer."""
    return name_tool_results(message_to_core(m, index=i) for i, m in enumerate(messages))
