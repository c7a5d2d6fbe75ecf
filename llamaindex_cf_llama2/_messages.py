"""LlamaIndex ``ChatMessage`` <-> core :class:`~cf_llama2.schema.Message`, pure functions.

Inbound (history sent to the model):

* roles: ``system`` and ``developer`` -> system; ``user``; ``assistant``, ``chatbot`` and
  ``model`` -> assistant; ``tool`` and ``function`` -> tool (the result of a call, with
  ``additional_kwargs["tool_call_id"]``; the tool name is taken from ``additional_kwargs["name"]``
  or from the assistant call it answers).
* blocks: ``TextBlock`` -> text; ``ToolCallBlock`` -> a tool call (assistant only); citation
  blocks -> their text; ``ThinkingBlock`` and ``CachePoint`` carry no conversation content for
  this model and are left out. Images, audio, video and documents raise
  :class:`~cf_llama2.errors.RequestValidationError`: Llama 2 reads text only.
* ``additional_kwargs["tool_calls"]`` (OpenAI-style dicts or objects, or flat
  ``{id, name, arguments}`` dicts) is read when a message has no ``ToolCallBlock``, for code that
  builds messages the older way.

Outbound (an answer): :func:`assistant_message` builds the ``ChatMessage`` with a ``TextBlock``,
one ``ToolCallBlock`` per valid call, ``additional_kwargs["tool_calls"]`` in the OpenAI shape,
and ``additional_kwargs["invalid_tool_calls"]`` for calls that could not be parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from cf_llama2.errors import RequestValidationError
from cf_llama2.prompt import name_tool_results
from cf_llama2.schema import ChatResult, InvalidToolCall, Message, Role, ToolCall

__all__ = [
    "assistant_message",
    "invalid_call_to_dict",
    "to_core_message",
    "to_core_messages",
    "tool_call_to_openai",
]

_ROLES: dict[str, Role] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}


_BLOCKS = "text, tool_call, thinking, citation or cache-point blocks"
_TEXT_ONLY_FIX = (
    "Llama 2 reads text only. Describe the content in a TextBlock instead (for documents, "
    "extract their text first)."
)
_TOOL_ANSWER_FIX = (
    "Tool calls need role 'assistant': only assistant messages call tools (a tool's answer "
    "is a role='tool' message with additional_kwargs={'tool_call_id': ...})."
)


def _role(message: ChatMessage, where: str) -> Role:
    value = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    role = _ROLES.get(value)
    if role is None:  # pragma: no cover - MessageRole is a closed enum
        raise RequestValidationError(
            f"{where}.role {value!r} is not supported; use one of {sorted(_ROLES)}",
            field=f"{where}.role",
            value=value,
            limit=", ".join(sorted(_ROLES)),
        )
    return role


def _arguments(value: Any, where: str) -> dict[str, Any]:
    """Tool-call arguments given as a dict or as JSON text -> a dict."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            got = f"text that is not valid JSON ({exc.msg} at char {exc.pos}): {value[:80]!r}"
            raise RequestValidationError(
                field=where, limit="a JSON object", value=value[:80], got=got
            ) from None
        if isinstance(parsed, dict):
            return parsed
        value = parsed
    kind = type(value).__name__
    raise RequestValidationError(field=where, limit="a JSON object (a dict)", value=kind, got=kind)


def _legacy_call(raw: Any, where: str, default_id: str) -> ToolCall:
    """One entry of ``additional_kwargs["tool_calls"]`` (dict or OpenAI object) -> ToolCall."""

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    function = get(raw, "function")
    source = function if function is not None else raw
    name = get(source, "name")
    if not isinstance(name, str) or not name:
        fix = "Every tool call needs a tool name."
        raise RequestValidationError(
            field=f"{where}.name", limit="a non-empty string", value=name, fix=fix
        )
    arguments = get(source, "arguments")
    if arguments is None:
        arguments = get(source, "tool_kwargs")
    call_id = get(raw, "id") or get(raw, "tool_call_id") or default_id
    return ToolCall(
        id=str(call_id), name=name, arguments=_arguments(arguments, f"{where}.arguments")
    )


def _unsupported(block: Any, where: str) -> RequestValidationError:
    kind = getattr(block, "block_type", type(block).__name__)
    got = f"a {kind!r} block"
    return RequestValidationError(
        field=where, limit=_BLOCKS, value=kind, got=got, fix=_TEXT_ONLY_FIX
    )


def _block_text(block: Any, where: str) -> str | None:
    """The text a content block contributes, ``None`` for blocks with no conversation text."""
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, (ThinkingBlock, CachePoint)):
        return None
    if isinstance(block, (CitableBlock, CitationBlock)):
        nested = block.content if isinstance(block, CitableBlock) else [block.cited_content]
        parts = [_block_text(inner, f"{where}.content[{k}]") for k, inner in enumerate(nested)]
        return "".join(p for p in parts if p)
    raise _unsupported(block, where)


def to_core_message(message: ChatMessage, *, index: int = 0) -> Message:
    """Convert one ``ChatMessage`` into a core :class:`Message`.

    Args:
        message: the LlamaIndex message.
        index: its position in the conversation (used in error fields and generated ids).

    Raises:
        RequestValidationError: an unsupported block (image, audio, video, document), a tool
            call on a non-assistant message, or malformed tool-call arguments.
    """
    where = f"messages[{index}]"
    role = _role(message, where)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for k, block in enumerate(message.blocks):
        bwhere = f"{where}.blocks[{k}]"
        if isinstance(block, ToolCallBlock):
            calls.append(
                ToolCall(
                    id=block.tool_call_id or f"call_{index}_{k}",
                    name=block.tool_name,
                    arguments=_arguments(block.tool_kwargs, f"{bwhere}.tool_kwargs"),
                )
            )
            continue
        text = _block_text(block, bwhere)
        if text is not None:
            texts.append(text)
    extra = message.additional_kwargs or {}
    legacy = extra.get("tool_calls")
    if legacy and not calls:
        if not isinstance(legacy, Sequence) or isinstance(legacy, (str, bytes)):
            kind = type(legacy).__name__
            field = f"{where}.additional_kwargs.tool_calls"
            raise RequestValidationError(
                field=field, limit="a list of tool calls", value=kind, got=kind
            )
        calls = [
            _legacy_call(raw, f"{where}.additional_kwargs.tool_calls[{k}]", f"call_{index}_{k}")
            for k, raw in enumerate(legacy)
        ]
    if calls and role != "assistant":
        limit = "'assistant' for messages with tool calls"
        raise RequestValidationError(
            field=f"{where}.role", limit=limit, value=role, fix=_TOOL_ANSWER_FIX
        )
    tool_call_id: str | None = None
    name: str | None = None
    if role == "tool":
        raw_id = extra.get("tool_call_id")
        tool_call_id = str(raw_id) if raw_id else None
        raw_name = extra.get("name") or extra.get("tool_name")
        if raw_name:
            name = str(raw_name)
    return Message(
        role=role,
        content="\n".join(texts),
        tool_calls=calls,
        tool_call_id=tool_call_id,
        name=name,
    )


def to_core_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    """Convert a conversation; tool results get the name of the call they answer.

    Raises:
        RequestValidationError: see :func:`to_core_message`.
    """
    out: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, ChatMessage):
            kind = type(message).__name__
            limit = "a llama_index ChatMessage"
            raise RequestValidationError(
                field=f"messages[{index}]", limit=limit, value=kind, got=kind
            )
        out.append(to_core_message(message, index=index))
    return name_tool_results(out)


def tool_call_to_openai(call: ToolCall) -> dict[str, Any]:
    """A tool call in the OpenAI shape used by ``additional_kwargs["tool_calls"]``."""
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def invalid_call_to_dict(call: InvalidToolCall) -> dict[str, Any]:
    """An unusable tool call, kept with the reason, for ``additional_kwargs``."""
    return {"id": call.id, "name": call.name, "arguments": call.arguments, "error": call.error}


def assistant_message(result: ChatResult) -> ChatMessage:
    """The assistant ``ChatMessage`` for a complete answer.

    Blocks: a ``TextBlock`` with the answer text (empty when the model only called tools),
    then one ``ToolCallBlock`` per valid call (``tool_kwargs`` a dict).
    """
    blocks: list[Any] = [TextBlock(text=result.response)]
    blocks.extend(
        ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=dict(c.arguments))
        for c in result.tool_calls
    )
    extra: dict[str, Any] = {}
    if result.tool_calls:
        extra["tool_calls"] = [tool_call_to_openai(c) for c in result.tool_calls]
    if result.invalid_tool_calls:
        extra["invalid_tool_calls"] = [invalid_call_to_dict(c) for c in result.invalid_tool_calls]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)
