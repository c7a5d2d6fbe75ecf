"""Structured tool calls from the wire: the ``tool_calls`` list of a Workers AI result.

Wire items carry no id; each call gets one here (or keeps the one it has). Nothing is dropped:
an item that is not a usable call becomes an :class:`~cf_llama2.schema.InvalidToolCall`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..schema import InvalidToolCall, ToolCall
from ..schema.reducer import finish_tool_call
from ..tools import Tool
from .shape import (
    ARGUMENT_KEYS,
    args_text,
    dump_json,
    new_tool_call_id,
    unknown_tool_error,
)

__all__ = ["calls_from_wire"]


def calls_from_wire(raw: Any, tools: Sequence[Tool] = ()) -> list[ToolCall | InvalidToolCall]:
    """Convert the ``tool_calls`` list of a Workers AI result into calls with ids.

    Items are ``{"name", "arguments"}`` where ``arguments`` is an object or a JSON string (an
    OpenAI-style ``{"function": {"name", "arguments"}}`` item is accepted too; an ``id`` on an
    item is kept, else one is generated). Nothing is dropped: an item without a name, with
    arguments that are not valid JSON or not an object, or (with ``tools``) naming an unknown
    tool becomes an :class:`~cf_llama2.schema.InvalidToolCall` with the reason. An ``error``
    string on an item (our extension: a server that judged the call invalid says why) makes it
    invalid with that reason.

    Args:
        raw: the ``tool_calls`` value (``None`` means no calls; a single object is one call).
        tools: when given, call names are checked against these tools.
    """
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        return [
            InvalidToolCall(
                id=new_tool_call_id(),
                arguments=dump_json(raw),
                error="tool_calls must be a list of {name, arguments} objects; got "
                + type(raw).__name__,
            )
        ]
    out: list[ToolCall | InvalidToolCall] = []
    for i, item in enumerate(raw):
        out.append(_call_from_wire_item(i, item, tools))
    return out


def _call_from_wire_item(i: int, item: Any, tools: Sequence[Tool]) -> ToolCall | InvalidToolCall:
    if not isinstance(item, Mapping):
        return InvalidToolCall(
            id=new_tool_call_id(),
            arguments=dump_json(item),
            error=f"tool_calls[{i}] must be an object {{name, arguments}}; got "
            + type(item).__name__,
        )
    inner: Mapping[str, Any] = item
    if isinstance(item.get("function"), Mapping):
        inner = item["function"]
    given_id = item.get("id")
    call_id = given_id if isinstance(given_id, str) and given_id else new_tool_call_id()
    name = inner.get("name")
    args_value = next((inner[k] for k in ARGUMENT_KEYS if k in inner), None)
    if not isinstance(name, str) or not name:
        return InvalidToolCall(
            id=call_id,
            arguments=dump_json(dict(item)),
            error=f"tool_calls[{i}] has no tool name (expected a non-empty string 'name'); "
            f"got {name!r}",
        )
    try:
        args = args_text(args_value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - wire JSON is always dumpable
        return InvalidToolCall(id=call_id, name=name, arguments=repr(args_value), error=str(exc))
    if tools and name not in {t.name for t in tools}:
        return InvalidToolCall(
            id=call_id, name=name, arguments=args, error=unknown_tool_error(name, tools)
        )
    error = item.get("error")
    return finish_tool_call(
        call_id, name, args, error=error if isinstance(error, str) and error else None
    )
