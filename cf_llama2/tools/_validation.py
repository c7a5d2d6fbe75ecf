"""Turn pydantic validation errors into :class:`RequestValidationError` with the fix in words."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import RequestValidationError

__all__ = ["FIELD_LIMITS", "from_pydantic"]

# Allowed ranges of the model page, in words, keyed by field name.
FIELD_LIMITS: dict[str, str] = {
    "max_tokens": "an integer >= 1 (default 256)",
    "temperature": "a number in 0..5 (default 0.6; 0 is greedy)",
    "top_p": "a number in 0..2",
    "top_k": "an integer in 1..50",
    "seed": "an integer in 1..9999999999",
    "repetition_penalty": "a number in 0..2",
    "frequency_penalty": "a number in 0..2",
    "presence_penalty": "a number in 0..2",
    "prompt": "a string of 1..131072 characters",
    "content": "a string of at most 131072 characters",
    "role": "one of 'system', 'user', 'assistant', 'tool'",
    "messages": "a non-empty list of {role, content} messages",
    "stop": "a list of at most 4 non-empty strings",
    "tool_choice": "'auto', 'any'/'required', 'none', a tool name, True, a tool, or "
    "{'type': 'function', 'function': {'name': ...}}",
}


def _loc_to_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def from_pydantic(error: ValidationError, *, model: str = "request") -> RequestValidationError:
    """Build one readable error from a pydantic ``ValidationError``.

    The message names every failing field, its allowed range and the value given, e.g.
    ``temperature must be a number in 0..5 (default 0.6; 0 is greedy); got 7.``
    """
    lines: list[str] = []
    first_field = ""
    first_value: Any = None
    first_limit = ""
    for item in error.errors(include_url=False):
        field = _loc_to_field(tuple(item.get("loc", ())))
        cause = item.get("ctx", {}).get("error")
        if not field and isinstance(cause, RequestValidationError):
            # a whole-model check that knows its field and wrote its own message
            lines.append(str(cause))
            if not first_field:
                first_field, first_value, first_limit = cause.field, cause.value, cause.limit
            continue
        leaf = field.rsplit(".", 1)[-1] if field else ""
        limit = FIELD_LIMITS.get(leaf, "")
        value = item.get("input")
        if item.get("type") == "missing":
            line = f"{field or model}: this field is required"
            if limit:
                line += f" ({limit})"
        elif limit:
            line = f"{field} must be {limit}; got {_short(value)}"
        else:
            msg = str(item.get("msg", "invalid value"))
            msg = msg.removeprefix("Value error, ")
            line = f"{field}: {msg}" if field else msg
            if item.get("type") not in ("value_error", "assertion_error"):
                line += f"; got {_short(value)}"
        lines.append(line)
        if not first_field:
            first_field, first_value, first_limit = field, value, limit
    head = f"Invalid {model}: " if len(lines) == 1 else f"Invalid {model} ({len(lines)} problems): "
    return RequestValidationError(
        head + "; ".join(lines), field=first_field, value=first_value, limit=first_limit
    )
