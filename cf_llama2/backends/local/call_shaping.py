"""How a forced or chosen tool call is shaped: schema bounds, close steering, copy and call bias.

A grammar makes every call well formed; these settings make it more often *right* and make it
close within its token budget. They are model-agnostic (no model or tool is named here) and
each was kept because it raised tool-calling accuracy on the BFCL benchmark
(``benchmarks/tool_calling.py``; docs/benchmarks.md lists what each gave):

* **bounded values** (:func:`shape_parameters`): strings get a ``maxLength`` and may not start
  or end with whitespace, integers and numbers get a ``minimum``/``maximum`` (no 100-digit
  numbers), arrays a ``maxItems``, so no value can run to the end of the budget;
* **required first**: an object's required properties come before its optional ones, so a
  model that closes early still has every required one;
* **copy bias**: inside a call, a value that copies the user's own words gets a logit bonus
  (a value copied from the question is far more often right than one the model invents):
  with ``copy_spans`` only the token that continues a span of the user's text, and a token
  repeated inside a value that is no span gets ``repeat_penalty`` off (see
  :mod:`.value_copy`); without, every token of the user's words, at every step;
* **call bias**: with ``tool_choice="auto"``, the first token that would open a JSON call gets
  a logit bonus against prose, the call-or-text decision being made on that one token;
* **close reserve**: the tail of the budget in which the call is steered to close is sized from
  the shortest complete call (:func:`close_reserve`), so nested objects and arrays close too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_SHAPING",
    "PREVIOUS_SHAPING",
    "ToolCallShaping",
    "close_reserve",
    "copy_token_ids",
    "minimal_instance",
    "opener_token_ids",
    "shape_parameters",
]

_WORD = re.compile(r"[^\s\"'`,;:!?()\[\]{}<>]+")


@dataclass(frozen=True)
class ToolCallShaping:
    """Settings for shaping tool calls on the local backend (see the module docstring).

    Args:
        bounded: bound strings, numbers and arrays in the call's schema.
        required_first: put each object's required properties first.
        max_string: ``maxLength`` given to strings that have none.
        max_items: ``maxItems`` given to arrays that have none.
        max_number: bound on the magnitude of integers and numbers that have no bounds.
        number_step: ``multipleOf`` given to numbers that have none (bounds the decimals).
        copy_bias: logit bonus for the tokens of the user's words inside a call (0: off).
        copy_spans: give the bonus only to tokens that continue a span of the user's text.
        repeat_penalty: logit penalty, with ``copy_spans``, for a token repeated inside a value
            that is not a span of the user's text.
        call_bias: logit bonus for a call opener at the first token of an ``auto`` answer.
        tool_schemas: describe the tools in the prompt by their JSON schemas instead of one
            readable line per argument (see :mod:`cf_llama2.tools.describe`).
        base_reserve: tokens kept for closing on top of the shortest complete call.
    """

    bounded: bool = True
    required_first: bool = True
    max_string: int = 96
    max_items: int = 8
    max_number: float = 1e12
    number_step: float = 1e-6
    copy_bias: float = 2.0
    copy_spans: bool = True
    repeat_penalty: float = 2.0
    call_bias: float = 4.0
    tool_schemas: bool = False
    base_reserve: int = 12


DEFAULT_SHAPING = ToolCallShaping()
"""What the local backend uses."""

PREVIOUS_SHAPING = ToolCallShaping(
    bounded=False, required_first=False, copy_bias=0.0, call_bias=0.0, tool_schemas=True
)
"""The earlier behaviour (unbounded schema, no biases, a fixed 12-token close reserve, the
tools' JSON schemas in the prompt)."""


def _is_plain_string(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and not (
        {"enum", "const", "pattern", "format"} & schema.keys()
    )


_COMBINATORS = {"properties", "patternProperties", "anyOf", "oneOf", "allOf", "$ref"}


def _is_free_form(schema: dict[str, Any]) -> bool:
    """An object that may hold any keys with any values (``{"type": "object"}``, a ``dict``)."""
    return schema.get("additionalProperties", True) is True and not (_COMBINATORS & schema.keys())


def _free_value() -> dict[str, Any]:
    """The values of a free-form object or array, bounded to one level of plain values.

    A free-form value may otherwise nest without end (measured: a forced call that wrote
    ``{"type": {"type": {...`` to the token limit and never closed); the strings and numbers
    in it are then bounded like any other (the caller shapes this schema next).
    """
    return {
        "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
    }


def shape_parameters(schema: dict[str, Any], shaping: ToolCallShaping) -> dict[str, Any]:
    """A copy of a JSON schema with the bounds and property order of ``shaping`` applied."""
    out = copy.deepcopy(schema)
    if shaping.bounded or shaping.required_first:
        _shape(out, shaping)
    return out


def _shape(node: Any, shaping: ToolCallShaping) -> None:
    if isinstance(node, list):
        for item in node:
            _shape(item, shaping)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if shaping.bounded:
        if _is_plain_string(node):
            node.setdefault("maxLength", shaping.max_string)
            if node.get("minLength", 1) >= 1:
                node["pattern"] = r"^\S(.*\S)?$"
        elif kind in ("integer", "number") and not ({"enum", "const"} & node.keys()):
            node.setdefault("minimum", -shaping.max_number)
            node.setdefault("maximum", shaping.max_number)
            if kind == "number":  # a finite number of decimals (and no endless "-0.000...")
                node.setdefault("multipleOf", shaping.number_step)
        elif kind == "array":
            node.setdefault("maxItems", max(shaping.max_items, node.get("minItems", 0)))
            if not {"items", "prefixItems"} & node.keys():
                node["items"] = _free_value()
        elif kind == "object" and _is_free_form(node):
            node["additionalProperties"] = _free_value()
        elif kind == "object" and isinstance(node.get("properties"), dict):
            # JSON Schema lets an object with declared properties hold any other key with any
            # value (measured: a forced call nested {"type": {"type": ... under an undeclared
            # key to the limit): only the declared keys are written.
            node.setdefault("additionalProperties", False)
    props = node.get("properties")
    if shaping.required_first and isinstance(props, dict):
        required = [r for r in node.get("required", []) if r in props]
        order = required + [k for k in props if k not in required]
        node["properties"] = {k: props[k] for k in order}
    for key in ("properties", "$defs", "definitions"):
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                _shape(sub, shaping)
    for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in node:
            _shape(node[key], shaping)


def minimal_instance(schema: Any, depth: int = 0) -> Any:
    """The shortest JSON value ``schema`` plausibly accepts (required properties only)."""
    if not isinstance(schema, dict) or depth > 16:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return min(schema["enum"], key=lambda v: len(json.dumps(v)))
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [minimal_instance(s, depth + 1) for s in schema[key]]
            return min(options, key=lambda v: len(json.dumps(v)))
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return True
    if kind == "array":
        item = minimal_instance(schema.get("items", {}), depth + 1)
        return [item] * int(schema.get("minItems", 0))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {
            name: minimal_instance(props.get(name, {}), depth + 1)
            for name in schema.get("required", [])
        }
    return None


def close_reserve(
    tokenizer: Any, parameters: Sequence[dict[str, Any]], shaping: ToolCallShaping
) -> int:
    """Tokens before the budget ends from which a call is steered to close.

    With ``bounded`` off, the fixed ``base_reserve``; else at least that, and enough for the
    shortest complete arguments of any of the tools (``parameters``: their schemas) plus a few
    tokens to end the value being written and the call, however nested the required part is.
    """
    if not shaping.bounded or not parameters:
        return shaping.base_reserve
    longest = max(
        len(
            tokenizer(
                json.dumps(minimal_instance(p), separators=(",", ":")), add_special_tokens=False
            )["input_ids"]
        )
        for p in parameters
    )
    return max(shaping.base_reserve, longest + 4)


def copy_token_ids(tokenizer: Any, texts: Iterable[str]) -> list[int]:
    """Ids of the tokens that spell the words of ``texts`` (with and without a leading space)."""
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(text))
    ids: set[int] = set()
    for word in words:
        for form in (word, " " + word):
            ids.update(int(i) for i in tokenizer(form, add_special_tokens=False)["input_ids"])
    return sorted(ids)


def opener_token_ids(tokenizer: Any, vocab: Sequence[tuple[str, int]] | None = None) -> list[int]:
    """Ids of the tokens whose text (leading spaces dropped) starts a JSON call: ``{``."""
    items = vocab if vocab is not None else list(tokenizer.get_vocab().items())
    out = []
    for _, token_id in items:
        text = tokenizer.decode([token_id]).lstrip()
        if text.startswith("{") and set(text) <= set('{"'):
            out.append(int(token_id))
    return sorted(out)
