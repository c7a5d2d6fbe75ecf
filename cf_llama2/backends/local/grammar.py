"""Grammar-constrained decoding with llguidance: tool calls and JSON-schema output.

A :class:`GrammarLogitsProcessor` wraps an llguidance matcher: on each step it feeds the matcher
the token sampled on the previous step (none on the first call, when ``input_ids`` is still the
prompt), asks it for the mask of allowed next tokens and sets every other logit to ``-inf``. The
mask is applied with plain torch bit operations (llguidance's own helper is wrapped in
``torch.compile``, which compiles for tens of seconds on its first CPU call).

Tool calls are decoded under the schema ``{"name": <one of the tools>, "arguments": <that
tool's parameters>}`` with ``additionalProperties: false`` on both objects (without it models add
keys at both levels) and compact whitespace (fewer tokens). Once the JSON is complete the
grammar allows only EOS, so EOS must stay allowed (no ``min_new_tokens``).
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from ...errors import MissingDependencyError, RequestValidationError, ServerError
from ...tools import Tool
from .call_shaping import DEFAULT_SHAPING, ToolCallShaping, shape_parameters

__all__ = [
    "GrammarLogitsProcessor",
    "build_matcher",
    "closing_tokens",
    "ll_tokenizer",
    "response_format_schema",
    "separator_tokens",
    "tool_call_schema",
]

_COMPILE_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "lenient": True}
_tokenizers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_tokenizers_lock = threading.Lock()


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf
    except ImportError as exc:
        raise MissingDependencyError(
            "llguidance", "local", "Constrained decoding (tool calls, response_format)"
        ) from exc
    return llguidance


def ll_tokenizer(tokenizer: Any) -> Any:
    """The llguidance tokenizer for a Transformers tokenizer, built once (~0.4 s) and cached."""
    with _tokenizers_lock:
        cached = _tokenizers.get(tokenizer)
        if cached is None:
            cached = _llguidance().hf.from_tokenizer(tokenizer)
            _tokenizers[tokenizer] = cached
        return cached


_closers: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


_separators: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


def closing_tokens(tokenizer: Any) -> list[int]:
    """Ids of the tokens made only of JSON closing characters (``"``, ``}``, ``]``), cached.

    Near the end of the token budget these are favoured (where the grammar allows them), so a
    constrained value that runs long still closes instead of being cut off.
    """
    return _charset_tokens(tokenizer, '"}]', _closers)


def separator_tokens(tokenizer: Any) -> list[int]:
    """Ids of the tokens made of closing characters and at least one ``,``, cached.

    Favoured less than :func:`closing_tokens` near the end of the budget: where an object
    still needs a required property, a ``,`` ends the value before it instead of a longer one.
    """
    return _charset_tokens(tokenizer, '"}],', _separators, needs=",")


def _charset_tokens(
    tokenizer: Any, chars: str, cache: weakref.WeakKeyDictionary[Any, list[int]], needs: str = ""
) -> list[int]:
    with _tokenizers_lock:
        cached = cache.get(tokenizer)
        if cached is None:
            vocab = tokenizer.get_vocab()
            cached = []
            for token_id in sorted(vocab.values()):
                text = tokenizer.decode([token_id]).strip()
                if text and set(text) <= set(chars) and needs in text:
                    cached.append(token_id)
            cache[tokenizer] = cached
        return cached


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    out.setdefault("additionalProperties", False)
    _enum_to_items(out)
    return out


def _enum_to_items(node: Any) -> None:
    """An array whose ``enum`` lists plain values, not arrays, means its items' choices.

    Taken literally no array matches it, so the call could not be written at all (seen in real
    tools: ``{"type": "array", "items": {"type": "string"}, "enum": ["trust", "buzz"]}``); the
    enum is moved to the items, which is what the tool's author meant.
    """
    if isinstance(node, list):
        for item in node:
            _enum_to_items(item)
        return
    if not isinstance(node, dict):
        return
    enum = node.get("enum")
    if (
        node.get("type") == "array"
        and isinstance(enum, list)
        and enum
        and not any(isinstance(v, list) for v in enum)
    ):
        items = node.get("items")
        items = dict(items) if isinstance(items, dict) else {}
        items.setdefault("enum", node.pop("enum"))
        node.pop("enum", None)
        node["items"] = items
    for value in node.values():
        if isinstance(value, (dict, list)):
            _enum_to_items(value)


def tool_call_schema(
    tools: Sequence[Tool], *, many: bool = False, shaping: ToolCallShaping = DEFAULT_SHAPING
) -> dict[str, Any]:
    """The JSON schema of one call to one of ``tools`` (or a non-empty list of calls).

    Args:
        tools: the tools a call may name (at least one).
        many: a JSON array of calls instead of one call object.
        shaping: bounds and property order applied to each tool's parameters.
    """
    if not tools:
        fix = "A constrained tool call needs one: pass tools=[...]."
        raise RequestValidationError(field="tools", limit="at least one tool", value=[], fix=fix)
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": shape_parameters(_closed(tool.parameters), shaping),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    call = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if many:
        return {"type": "array", "items": call, "minItems": 1}
    return call


def response_format_schema(kind: str, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The schema for ``response_format``: the given one, or any JSON object for ``json_object``."""
    if kind == "json_object" or not json_schema:
        return {"type": "object"}
    # Accept the OpenAI wrapper {"name": ..., "schema": {...}} as well as a bare schema.
    if isinstance(json_schema.get("schema"), dict) and "type" not in json_schema:
        return dict(json_schema["schema"])
    return json_schema


def build_matcher(tokenizer: Any, schema: dict[str, Any], *, field: str) -> Any:
    """An llguidance matcher for ``schema``.

    Raises:
        RequestValidationError: the schema cannot be compiled (names ``field`` and the reason).
    """
    llg = _llguidance()
    try:
        grammar = llg.LLMatcher.grammar_from_json_schema(schema, defaults=_COMPILE_OPTIONS)
    except (ValueError, TypeError) as exc:
        raise _bad_schema(field, str(exc)) from None
    matcher = llg.LLMatcher(ll_tokenizer(tokenizer), grammar, log_level=0)
    if matcher.is_error():
        raise _bad_schema(field, matcher.get_error())
    return matcher


def _bad_schema(field: str, reason: str) -> RequestValidationError:
    fix = "Simplify the schema (plain types, properties, required, enum, arrays)."
    limit = "a JSON schema the local backend can enforce"
    return RequestValidationError(field=field, limit=limit, value=reason, got=reason, fix=fix)


class GrammarLogitsProcessor:
    """A Transformers-style logits processor that keeps decoding inside a grammar.

    Args:
        matcher: an llguidance ``LLMatcher`` in its start state.
        vocab_size: the number of tokens the tokenizer knows (logits beyond it are masked).
    """

    def __init__(self, matcher: Any, vocab_size: int) -> None:
        import torch

        self.matcher = matcher
        self._vocab = vocab_size
        self._bitmask = torch.full(((vocab_size + 31) // 32,), -1, dtype=torch.int32)
        self._shifts = torch.arange(32, dtype=torch.int32)
        self._seen: int | None = None

    @property
    def done(self) -> bool:
        """The grammar is complete: only EOS may follow."""
        return bool(self.matcher.is_stopped())

    def consume(self, token_id: int) -> None:
        """Feed one sampled token to the matcher.

        Raises:
            ServerError: the token is not allowed (the mask was bypassed).
        """
        if not self.matcher.consume_token(int(token_id)):
            raise ServerError(
                f"constrained decoding failed: token {token_id} was rejected by the grammar "
                f"({self.matcher.get_error()})"
            )

    def mark_consumed(self, length: int) -> None:
        """Record that the caller consumed the tokens up to ``length`` itself."""
        self._seen = length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        length = int(input_ids.shape[-1])
        if self._seen is not None and length > self._seen:
            self.consume(int(input_ids[0, -1]))
        self._seen = length
        return self.mask(scores)

    def mask(self, scores: Any) -> Any:
        """Set the logits of tokens the grammar forbids to ``-inf`` (in place) and return them."""
        import torch

        self.matcher.unsafe_compute_mask_ptr(
            self._bitmask.data_ptr(), self._bitmask.numel() * self._bitmask.element_size()
        )
        if self.matcher.is_error():
            raise ServerError(f"constrained decoding failed: {self.matcher.get_error()}")
        bits = (self._bitmask.unsqueeze(-1) >> self._shifts) & 1
        allowed = bits.reshape(-1)[: self._vocab].to(device=scores.device, dtype=torch.bool)
        n = min(self._vocab, scores.shape[-1])
        scores[..., :n].masked_fill_(~allowed[:n], float("-inf"))
        if scores.shape[-1] > n:
            scores[..., n:] = float("-inf")
        return scores
