"""Decode a request body into plain JSON values, with bounded work and strict wire types.

Every step here is pure and CPU-bound, so the app runs it in a worker thread, never on the event
loop: JSON decoding (bounded nesting, so a body nested 10,000 levels deep is a 400 and not a
``RecursionError``), a check that no string holds a lone surrogate (JSON's ``"\\ud800"`` escape
decodes to a string that cannot be encoded as UTF-8 again), and the JSON types the Workers AI
input schema names for the top-level fields (``max_tokens`` an integer, ``stream`` a boolean,
...): pydantic's lax mode would turn ``true`` into ``1`` and ``"yes"`` into ``True``.

Each failure is a :class:`~cf_llama2.errors.RequestValidationError` (HTTP 400, code 5006) naming
the field, the rule and the fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import RequestValidationError

__all__ = ["MAX_JSON_DEPTH", "WIRE_TYPES", "check_wire_types", "decode_json_body"]

MAX_JSON_DEPTH = 64
"""Objects and arrays nested deeper than this are refused (tool schemas need far fewer)."""


def _integer(value: Any) -> bool:
    return type(value) is int


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _string(value: Any) -> bool:
    return type(value) is str


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "integer": (_integer, "an integer (JSON number without a fraction, not a string or boolean)"),
    "number": (_number, "a number (not a string or boolean)"),
    "boolean": (_boolean, "a boolean (true or false, not a string or number)"),
    "string": (_string, "a string"),
}

WIRE_TYPES: dict[str, str] = {
    "prompt": "string",
    "raw": "boolean",
    "stream": "boolean",
    "max_tokens": "integer",
    "temperature": "number",
    "top_p": "number",
    "top_k": "integer",
    "seed": "integer",
    "repetition_penalty": "number",
    "frequency_penalty": "number",
    "presence_penalty": "number",
    "lora": "string",
}
"""The JSON type of each top-level field, as the model page's input schema names it."""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number with a fraction" if not value.is_integer() else "number with a fraction (.0)"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, (dict, list)) else "..."
    return text if len(text) <= 40 else text[:37] + "..."


def check_wire_types(body: Any) -> None:
    """Refuse top-level fields whose JSON type is not the one the input schema names.

    ``null`` is left to the request model (which accepts it for optional fields); every other
    value must have the schema's type exactly: ``"8"``, ``true`` and ``8.0`` are not integers.

    Raises:
        RequestValidationError: a field has the wrong JSON type (HTTP 400, code 5006).
    """
    if not isinstance(body, Mapping):
        return
    for field, kind in WIRE_TYPES.items():
        if field not in body or body[field] is None:
            continue
        value = body[field]
        check, words = _CHECKS[kind]
        if check(value):
            continue
        hint = ""
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            hint = f"; send {int(value)}"
        elif kind == "integer" and isinstance(value, str) and value.strip().isdigit():
            hint = f"; send {value.strip()} without quotes"
        elif kind == "boolean" and isinstance(value, str):
            hint = "; send true or false without quotes"
        raise RequestValidationError(
            f"{field} must be {words}; got the {_json_type(value)} {_short(value)}{hint}",
            field=field,
            value=value,
            limit=words,
        )


def _path(parts: tuple[Any, ...]) -> str:
    out: list[str] = []
    node: Any = parts
    while node:
        node, key = node
        out.append(str(key))
    return ".".join(reversed(out)) or "(the body)"


def _surrogate(text: str, where: tuple[Any, ...], what: str) -> RequestValidationError | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return RequestValidationError(
            f"{_path(where)}: the {what} holds a lone surrogate (\\u{code:04x} at character "
            f"{exc.start}), which is not a Unicode character; send valid UTF-8 text (a "
            "surrogate escape must come as a high/low pair)",
            field=_path(where),
            value=f"\\u{code:04x}",
            limit="valid Unicode text (no lone surrogates)",
        )
    return None


def _too_deep(where: str) -> RequestValidationError:
    return RequestValidationError(
        f"the request body is nested more than {MAX_JSON_DEPTH} levels deep (at {where}); "
        f"objects and arrays may nest at most {MAX_JSON_DEPTH} levels",
        field=where,
        limit=f"at most {MAX_JSON_DEPTH} levels of nesting",
    )


def _not_finite(where: str, value: Any) -> RequestValidationError:
    return RequestValidationError(
        f"{where}: {value} is not a JSON number (numbers must be finite); send a finite number",
        field=where,
        value=str(value),
        limit="a finite number",
    )


def _refuse_constant(name: str) -> Any:
    raise _not_finite("(the body)", name)


def _check_tree(value: Any) -> None:
    # Iterative (no recursion): depth and text checks in one pass over the decoded body.
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(value, (), 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, str):
            error = _surrogate(node, where, "string")
            if error is not None:
                raise error
            continue
        if isinstance(node, float) and not math.isfinite(node):
            raise _not_finite(_path(where), node)
        if not isinstance(node, (dict, list)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep(_path(where))
        if isinstance(node, dict):
            for key, item in node.items():
                error = _surrogate(key, (where, key), "key")
                if error is not None:
                    raise error
                stack.append((item, (where, key), depth + 1))
        else:
            stack.extend((item, (where, i), depth + 1) for i, item in enumerate(node))


def decode_json_body(raw: bytes) -> Any:
    """Decode a request body: UTF-8 JSON, nested at most ``MAX_JSON_DEPTH`` levels.

    Raises:
        RequestValidationError: empty, not UTF-8, not JSON, nested too deep or holding a lone
            surrogate (HTTP 400, code 5006).
    """
    if not raw.strip():
        raise RequestValidationError(
            "the request body is empty; send a JSON object with 'messages' or 'prompt'",
            field="",
            limit="a JSON object",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestValidationError(
            f"the request body is not UTF-8 text (byte {exc.start} is invalid); send a UTF-8 "
            "JSON object",
            field="",
            limit="UTF-8 JSON",
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep("(the body)") from None
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}; send a JSON object with 'messages' or 'prompt'",
            field="",
            limit="a JSON object",
        ) from None
    _check_tree(value)
    return value
