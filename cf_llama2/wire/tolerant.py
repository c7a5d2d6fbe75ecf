"""What the server accepts beyond the canonical body: extra keys and the OpenAI ``tool_choice``.

Workers AI's input schema forbids no extra keys, so clients send them (``refusal``,
``parallel_tool_calls``, provider metadata ...). :func:`tolerate_body` drops the keys this server
does not know, at the top level, on messages and on tool calls, and returns a note for each one
(the server reports them in the envelope's ``messages`` list), so nothing is dropped silently.
It also turns a ``tool_choice`` object (OpenAI's ``{"type": "function", "function": {"name"}}``
or ``{"type": "auto" | "none" | "required"}``) into the string the core schema takes.
Wrong types and out-of-range values are left in place for the schema to refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..schema import SAMPLING_FIELDS
from ..tools import normalize_tool_choice as core_tool_choice

__all__ = ["BODY_KEYS", "normalize_tool_choice", "tolerate_body"]

BODY_KEYS = frozenset(
    {
        "messages",
        "prompt",
        "raw",
        "stream",
        "tools",
        "functions",
        "tool_choice",
        "stop",
        "response_format",
        *SAMPLING_FIELDS,
    }
)
"""The request keys the server reads (both shapes); others are ignored and reported."""

_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})
_CALL_KEYS = frozenset({"id", "type", "function", "name", "arguments"})


def normalize_tool_choice(value: Any) -> Any:
    """A ``tool_choice`` string, or an object form turned into one (see
    :func:`cf_llama2.tools.normalize_tool_choice`). Other values pass unchanged.

    Raises:
        RequestValidationError: an object of no known form.
    """
    return core_tool_choice(value) if isinstance(value, Mapping) else value


def _drop(
    item: Mapping[str, Any], known: frozenset[str], where: str, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in known:
            out[key] = value
        else:
            notes.append(f"ignored unknown key {where}{key!r}")
    return out


def tolerate_body(body: Any) -> tuple[Any, list[str]]:
    """Drop the keys the server does not read and normalise ``tool_choice``.

    Args:
        body: the decoded JSON body (anything that is not an object passes unchanged).

    Returns:
        ``(body, notes)``: the body to validate, and one note per ignored key.

    Raises:
        RequestValidationError: ``tool_choice`` is an object of no known form.
    """
    if not isinstance(body, Mapping):
        return body, []
    notes: list[str] = []
    data = _drop(body, BODY_KEYS, "", notes)
    if "tool_choice" in data:
        data["tool_choice"] = normalize_tool_choice(data["tool_choice"])
    messages = data.get("messages")
    if isinstance(messages, list):
        cleaned: list[Any] = []
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                cleaned.append(message)
                continue
            item = _drop(message, _MESSAGE_KEYS, f"messages[{i}].", notes)
            calls = item.get("tool_calls")
            if isinstance(calls, list):
                item["tool_calls"] = [
                    _drop(c, _CALL_KEYS, f"messages[{i}].tool_calls[{j}].", notes)
                    if isinstance(c, Mapping)
                    else c
                    for j, c in enumerate(calls)
                ]
            cleaned.append(item)
        data["messages"] = cleaned
    return data, notes
