"""Fuzz the tool-call parsers: no exception escapes, and a stream in any split agrees with
:func:`parse_text` on the whole text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cf_llama2.schema import InvalidToolCall, ToolCall
from cf_llama2.schema.reducer import StreamReducer, finish_tool_call
from cf_llama2.tool_calls import ToolCallStreamParser, calls_from_wire, parse_text
from cf_llama2.tools import normalize_tool

from .conftest import CASES_PER_EXAMPLE, FUZZ
from .strategies import WEIRD_VALUES, texts

TOOLS = [
    normalize_tool({"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {}}}})
]


def _shape(calls: list[ToolCall | InvalidToolCall]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for call in calls:
        if isinstance(call, ToolCall):
            out.append(("ok", call.name, call.arguments))
        else:
            out.append(("invalid", call.name, call.arguments, bool(call.error)))
    return out


def _streamed(text: str, cuts: list[int]) -> tuple[str, list[ToolCall | InvalidToolCall]]:
    parser = ToolCallStreamParser(TOOLS)
    events: list[Any] = []
    start = 0
    for cut in sorted(c % (len(text) + 1) for c in cuts):
        events += parser.feed(text[start:cut])
        start = max(start, cut)
    events += parser.feed(text[start:])
    tail, _ = parser.finish("stop")
    reducer = StreamReducer()
    for event in [*events, *tail]:
        reducer.feed(event)
    calls = [
        finish_tool_call(part.id or "x", part.name, part.arguments, error=part.error)
        for _, part in sorted(reducer.calls.items())
    ]
    return "".join(reducer.text), calls


@pytest.mark.timeout(300)
@FUZZ
@given(texts(), st.lists(st.integers(0, 200), max_size=4))
def test_text_in_any_split_parses_like_the_whole(batch: list[str], cuts: list[int]) -> None:
    assert len(batch) == CASES_PER_EXAMPLE
    for text in batch:
        whole_text, whole_calls = parse_text(text, TOOLS)
        split_text, split_calls = _streamed(text, cuts)
        assert split_text == whole_text
        assert _shape(split_calls) == _shape(whole_calls)


def _wire_pool() -> list[Any]:
    keys = ["name", "arguments", "function", "id", "error", "type", "parameters"]
    values = [*WEIRD_VALUES, '{"tz": 1}', "{", "get_time", {"tz": "UTC"}]
    pool: list[Any] = list(values)
    pool += [[v] for v in values]
    pool += [{k: v} for k in keys for v in values]
    pool += [[{"name": "get_time", k: v}] for k in keys for v in values]
    pool += [{"function": {"name": v, "arguments": w}} for v in values[:8] for w in values]
    return pool


WIRE_POOL = _wire_pool()


@pytest.mark.timeout(300)
@FUZZ
@given(st.binary(min_size=CASES_PER_EXAMPLE * 2, max_size=CASES_PER_EXAMPLE * 2))
def test_any_wire_tool_calls_become_calls(data: bytes) -> None:
    for i in range(CASES_PER_EXAMPLE):
        raw = WIRE_POOL[(data[2 * i] * 256 + data[2 * i + 1]) % len(WIRE_POOL)]
        calls = calls_from_wire(raw, TOOLS)
        assert all(isinstance(c, (ToolCall, InvalidToolCall)) for c in calls)
        assert all(c.error for c in calls if isinstance(c, InvalidToolCall))
