"""What a tool call looks like: its keys, its id, its error texts, and the test of a JSON object.

Shared by :mod:`cf_llama2.tool_calls.wire` (structured calls from the wire) and the stream parser
(:mod:`cf_llama2.tool_calls.parser`, calls written in model text).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from ..tools import Tool

__all__ = [
    "ARGUMENT_KEYS",
    "META_KEYS",
    "NAME_KEYS",
    "args_text",
    "dump_json",
    "interpret_call_object",
    "new_tool_call_id",
    "unknown_tool_error",
]

NAME_KEYS = ("name", "function", "tool")
"""Keys that carry the tool name in a call object, in order of preference."""
ARGUMENT_KEYS = ("arguments", "parameters", "tool_input")
"""Keys that carry the arguments in a call object, in order of preference."""
META_KEYS = ("id", "type")
"""Keys allowed in a call object besides the name and the arguments."""


def new_tool_call_id() -> str:
    """A new, unique tool-call id: ``"call_"`` followed by 24 hex characters.

    The ids are random (uuid4) rather than derived from the response: two identical answers in
    one conversation (the same call made twice) must still get different ids, because tool
    results are matched to calls by id. An id is generated once, when the parser first sees the
    call, so the streamed deltas and the folded result carry the same id.
    """
    return "call_" + uuid.uuid4().hex[:24]


def unknown_tool_error(name: str, tools: Sequence[Tool]) -> str:
    """The error text for a call to a tool that is not in ``tools``."""
    known = ", ".join(t.name for t in tools) or "none"
    return f"unknown tool {name!r}; known: {known}"


def args_text(value: Any) -> str:
    """The arguments as JSON text: an object as JSON, a string as is (JSON in a string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def dump_json(value: Any) -> str:
    """``value`` as JSON text for an error report, or its ``repr`` when it is not JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def interpret_call_object(obj: Any) -> tuple[str | None, str, str | None] | None:
    """Decide whether a complete JSON object is a call: ``(name, arguments, error)`` or None."""
    if not isinstance(obj, dict):
        return None
    fn = obj.get("function")
    if isinstance(fn, dict) and set(obj) <= {"function", *META_KEYS}:
        return interpret_call_object(fn)
    name_key = next((k for k in NAME_KEYS if k in obj), None)
    args_key = next((k for k in ARGUMENT_KEYS if k in obj), None)
    other = set(obj) - {*NAME_KEYS, *ARGUMENT_KEYS, *META_KEYS}
    if name_key is None or (other and args_key is None):
        return None
    name = obj[name_key]
    args = args_text(obj[args_key]) if args_key else ""
    if not isinstance(name, str) or not name:
        if args_key is None:
            return None
        return None, args, f"the tool name ({name_key!r}) must be a non-empty string; got {name!r}"
    return name, args, None
