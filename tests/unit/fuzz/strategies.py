"""Fast hypothesis strategies: inputs glued from pieces that matter to the parsers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from .conftest import CASES_PER_EXAMPLE

JSON_PIECES = [
    "{", "}", "[", "]", ":", ",", '"', "\\", "\\u", "d800", "\\ud800", "\\udc00", " ", "\n",
    "\t", "null", "true", "false", "0", "-1", "1e999", "NaN", "Infinity", "2.0", '"x"',
    '"prompt"', '"messages"', '"role"', '"user"', '"content"', '"stream"', '"max_tokens"',
    '"tools"', '"parameters"', '"$ref"', '"#/$defs/A"', '"$defs"', '"type"', '"object"',
    '"properties"', "\u00e9", "\ufeff", "\x00", "\xff",
]  # fmt: skip

TEXT_PIECES = [
    "{", "}", "[", "]", ":", ",", '"', "\\", " ", "\n", "\n\n", '"name"', '"function"',
    '"arguments"', '"parameters"', '"id"', '"type"', '"get_time"', '"nope"', '"tz"', '"UTC"',
    "null", "1", "tru", "e", "```", "```json", "<tool_call>", "</tool_call>", "[TOOL_CALLS]",
    "Sure!", "\u00e9", "\ud800", '{"name": "get_time", "arguments": {"tz": "UTC"}}',
    '[{"name": "get_time", "parameters": {}}]', '"{\\"tz\\": 1}"',
]  # fmt: skip

WEIRD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 8, 2.0, 0.5, 1e300, "", "8", "yes", "x" * 5, "\ud800",
    [], {}, [1, [2, [3]]], {"a": {"b": {}}}, [{"role": "user", "content": "hi"}],
    {"type": "function", "function": {"name": "f", "parameters": {}}},
    {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}},
                                 "$defs": {"A": {"$ref": "#/$defs/A"}}}},
]  # fmt: skip

KEYS = [
    "prompt", "messages", "stream", "max_tokens", "temperature", "top_p", "top_k", "seed",
    "raw", "lora", "tools", "functions", "role", "content", "name", "parameters",
]  # fmt: skip


def _split(data: bytes, pieces: list[str], count: int) -> list[str]:
    """Cut ``data`` into ``count`` strings: bytes under 16 end a case, others pick a piece."""
    cases: list[str] = []
    current: list[str] = []
    for byte in data:
        if byte < 16:
            cases.append("".join(current))
            current = []
        else:
            current.append(pieces[byte % len(pieces)])
    cases.append("".join(current))
    cases += [""] * (count - len(cases))
    return cases[:count]


def glued_batch(pieces: list[str]) -> st.SearchStrategy[list[str]]:
    """A batch of strings glued from ``pieces``, drawn as one byte string (fast to draw)."""
    size = CASES_PER_EXAMPLE * 32
    return st.binary(min_size=size // 2, max_size=size).map(
        lambda data: _split(data, pieces, CASES_PER_EXAMPLE)
    )


def _body(draw_keys: list[str], values: list[Any]) -> Any:
    body: dict[str, Any] = dict(zip(draw_keys, values, strict=False))
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        body["messages"] = [
            m if isinstance(m, dict) else {"role": "user", "content": m} for m in messages
        ]
    return body


bodies = st.builds(
    _body,
    st.lists(st.sampled_from(KEYS), max_size=6),
    st.lists(st.sampled_from(WEIRD_VALUES), min_size=6, max_size=6),
)
"""Objects with the request's keys and odd values."""


def raw_bodies() -> st.SearchStrategy[list[bytes]]:
    """Batches of raw bodies: glued JSON-ish text, JSON of odd objects, and raw bytes."""
    return st.tuples(
        glued_batch(JSON_PIECES),
        st.lists(bodies, min_size=4, max_size=4),
        st.binary(max_size=64),
    ).map(
        lambda parts: [
            *(text.encode("utf-8", "surrogatepass") for text in parts[0][:-5]),
            *(json.dumps(body).encode() for body in parts[1]),
            parts[2],
        ]
    )


def texts() -> st.SearchStrategy[list[str]]:
    """Batches of model answers glued from tool-call pieces."""
    return glued_batch(TEXT_PIECES)
