"""Core requests for ``CloudflareLlama2``: instance defaults overridden by per-call kwargs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from pydantic import BaseModel

from cf_llama2.backends.lifecycle import merge_call_options
from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import SAMPLING_FIELDS, ChatRequest, PromptRequest, ResponseFormat

from ._messages import to_core_messages
from ._tools import resolve_tool_choice, to_core_tools

__all__ = [
    "CHAT_ONLY",
    "REQUEST_FIELDS",
    "call_params",
    "chat_request",
    "field_defaults",
    "prompt_request",
]

REQUEST_FIELDS = (*SAMPLING_FIELDS, "stop", "response_format")
"""Request fields settable on the LLM and overridable per call."""
CHAT_ONLY = ("tools", "tool_choice", "tool_required")
"""Per-call kwargs that only chat calls accept."""


def _response_format(value: Any) -> Any:
    """Accept a pydantic model class as ``response_format`` (its JSON schema)."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return ResponseFormat(type="json_schema", json_schema=value.model_json_schema())
    return value


def field_defaults(source: object) -> dict[str, Any]:
    """The request fields set on ``source`` (the LLM), without ``None`` values."""
    values = {k: getattr(source, k) for k in REQUEST_FIELDS if k != "response_format"}
    return {k: v for k, v in values.items() if v is not None}


def call_params(
    defaults: Mapping[str, Any], kwargs: Mapping[str, Any], allowed: Sequence[str]
) -> dict[str, Any]:
    """Instance defaults overridden by per-call kwargs (:func:`merge_call_options`).

    ``allowed`` names the further kwargs the call takes (``tools``, ``raw``...); they are
    checked here and read by the caller.

    Raises:
        RequestValidationError: a kwarg that is neither a request field nor in ``allowed``.
    """
    params = merge_call_options(defaults, None, kwargs, allowed_extra=("response_format", *allowed))
    params = {k: v for k, v in params.items() if k in REQUEST_FIELDS}
    if "response_format" in params:
        params["response_format"] = _response_format(params["response_format"])
    return params


def chat_request(
    messages: Sequence[ChatMessage],
    kwargs: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    stream: bool,
) -> ChatRequest:
    """The core chat request for ``messages`` and the per-call ``kwargs`` (tools included)."""
    params = call_params(defaults, kwargs, CHAT_ONLY)
    tools = to_core_tools(kwargs.get("tools"))
    choice = resolve_tool_choice(
        kwargs.get("tool_choice"), bool(kwargs.get("tool_required", False)), tools
    )
    return ChatRequest(
        messages=to_core_messages(messages),
        tools=tools,
        tool_choice=choice,
        stream=stream,
        **params,
    )


def prompt_request(
    prompt: str,
    formatted: bool,
    kwargs: Mapping[str, Any],
    defaults: Mapping[str, Any],
    completion_to_prompt: Callable[[str], str] | None,
    *,
    stream: bool,
) -> PromptRequest:
    """The core prompt request for a completion call.

    Raises:
        RequestValidationError: tool kwargs (completions take no tools) or an unknown kwarg.
    """
    if any(k in kwargs for k in CHAT_ONLY):
        names = sorted(k for k in kwargs if k in CHAT_ONLY)
        fix = "complete() takes no tools; use chat() or chat_with_tools() to call tools."
        raise RequestValidationError(
            field="tools", limit="absent in complete()", value=names, fix=fix
        )
    params = call_params(defaults, kwargs, ("raw",))
    if not formatted and completion_to_prompt is not None:
        prompt = completion_to_prompt(prompt)
    return PromptRequest(prompt=prompt, raw=bool(kwargs.get("raw", False)), stream=stream, **params)
