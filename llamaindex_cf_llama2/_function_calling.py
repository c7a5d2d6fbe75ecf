"""Function-calling helpers for ``CloudflareLlama2``: the arguments of a tool-calling turn,
the one-call-only rule and the ``ToolSelection`` list of a response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

from ._tools import resolve_tool_choice, to_core_tools

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["keep_first_tool_call", "tool_chat_arguments", "tool_selections"]


def tool_chat_arguments(
    tools: Sequence[BaseTool],
    user_msg: str | ChatMessage | None,
    chat_history: list[ChatMessage] | None,
    tool_required: bool,
    tool_choice: str | Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``chat`` arguments for a tool-calling turn (history, then the user message)."""
    core_tools = to_core_tools(tools)
    messages = list(chat_history or [])
    if isinstance(user_msg, str):
        user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
    if user_msg is not None:
        messages.append(user_msg)
    return {
        "messages": messages,
        "tools": core_tools,
        "tool_choice": resolve_tool_choice(tool_choice, tool_required, core_tools),
        **kwargs,
    }


def keep_first_tool_call(response: ChatResponse) -> ChatResponse:
    """Drop every tool call of ``response`` but the first (in place); return ``response``."""
    message = response.message
    calls = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    if len(calls) > 1:
        first = calls[0]
        message.blocks = [
            b for b in message.blocks if not isinstance(b, ToolCallBlock) or b is first
        ]
        legacy = message.additional_kwargs.get("tool_calls")
        if isinstance(legacy, list) and legacy:
            message.additional_kwargs["tool_calls"] = legacy[:1]
    return response


def tool_selections(response: ChatResponse, error_on_no_tool_call: bool) -> list[ToolSelection]:
    """The tool calls of a response (complete, or a partial stream chunk).

    Partial chunks carry the arguments received so far as JSON text; they are parsed
    leniently (incomplete JSON gives the keys complete so far).

    Raises:
        ValueError: no tool call and ``error_on_no_tool_call=True``; the message names any
            call the model attempted that could not be parsed.
    """
    message = response.message
    selections = [
        ToolSelection(
            tool_id=block.tool_call_id or "",
            tool_name=block.tool_name,
            tool_kwargs=_lenient_arguments(block.tool_kwargs),
        )
        for block in message.blocks
        if isinstance(block, ToolCallBlock) and block.tool_name
    ]
    if not selections:
        selections = [
            _selection_from_legacy(raw) for raw in message.additional_kwargs.get("tool_calls") or []
        ]
    if not selections and error_on_no_tool_call:
        invalid = message.additional_kwargs.get("invalid_tool_calls") or []
        reasons = "; ".join(f"{c.get('name')}: {c.get('error')}" for c in invalid)
        if invalid:
            detail = (
                f"The model attempted {len(invalid)} call(s) that could not be used: {reasons}."
            )
            fix = (
                "Raise max_tokens so the call fits."
                if "max_tokens" in reasons
                else "Retry, or force the call with tool_required=True."
            )
        else:
            detail = f"It answered with text: {(message.content or '')[:200]!r}."
            fix = "Pass tool_required=True (or tool_choice='<tool name>') to force a call."
        raise ValueError(f"Expected at least one tool call, but got 0 tool calls. {detail} {fix}")
    return selections


def _lenient_arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = parse_partial_json(value)
        except (ValueError, TypeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _selection_from_legacy(raw: Any) -> ToolSelection:
    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    function = get(raw, "function")
    source = function if function is not None else raw
    arguments = get(source, "arguments")
    return ToolSelection(
        tool_id=str(get(raw, "id") or ""),
        tool_name=str(get(source, "name") or ""),
        tool_kwargs=_lenient_arguments(arguments),
    )
