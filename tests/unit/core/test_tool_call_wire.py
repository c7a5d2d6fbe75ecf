"""Structured tool calls from the wire (``calls_from_wire``) and tool-call ids."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cf_llama2.schema import InvalidToolCall, ToolCall
from cf_llama2.tool_calls import calls_from_wire, new_tool_call_id
from cf_llama2.tools import Tool

TOOLS = [
    Tool(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    ),
    Tool(name="get_time"),
]

ID_RE = re.compile(r"^call_[0-9a-f]{24}$")


def summary(call: ToolCall | InvalidToolCall) -> tuple[Any, ...]:
    if isinstance(call, ToolCall):
        return ("ok", call.name, call.arguments)
    return ("invalid", call.name, call.arguments, call.error)


# ---------------------------------------------------------------------------------------------
# ids


def test_new_tool_call_id_format_and_uniqueness() -> None:
    ids = {new_tool_call_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(ID_RE.match(i) for i in ids)


# ---------------------------------------------------------------------------------------------
# calls_from_wire


def test_wire_object_and_string_arguments() -> None:
    calls = calls_from_wire(
        [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_time", "arguments": '{"tz": "UTC"}'},
        ]
    )
    assert [summary(c) for c in calls] == [
        ("ok", "get_weather", {"city": "Paris"}),
        ("ok", "get_time", {"tz": "UTC"}),
    ]
    assert all(ID_RE.match(c.id) for c in calls)
    assert calls[0].id != calls[1].id


def test_wire_missing_or_null_arguments_mean_no_arguments() -> None:
    calls = calls_from_wire([{"name": "get_time"}, {"name": "get_time", "arguments": None}])
    assert [summary(c) for c in calls] == [("ok", "get_time", {}), ("ok", "get_time", {})]


def test_wire_openai_wrapped_item_is_accepted_and_keeps_its_id() -> None:
    calls = calls_from_wire(
        [
            {
                "id": "call_given",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ]
    )
    assert calls == [ToolCall(id="call_given", name="get_weather", arguments={"city": "Oslo"})]


@pytest.mark.parametrize(
    ("item", "error_part"),
    [
        ({"arguments": {"a": 1}}, "has no tool name"),
        ({"name": "", "arguments": {}}, "has no tool name"),
        ({"name": 3, "arguments": {}}, "has no tool name"),
        ({"name": "get_time", "arguments": "{not json"}, "not valid JSON"),
        ({"name": "get_time", "arguments": "[1, 2]"}, "must be a JSON object; got list"),
        ({"name": "get_time", "arguments": [1, 2]}, "must be a JSON object; got list"),
        ({"name": "get_time", "arguments": 5}, "must be a JSON object; got int"),
        ("get_time", "must be an object {name, arguments}; got str"),
    ],
)
def test_wire_bad_items_become_invalid_calls(item: Any, error_part: str) -> None:
    calls = calls_from_wire([{"name": "get_time", "arguments": {}}, item])
    assert len(calls) == 2, "nothing is dropped"
    assert isinstance(calls[0], ToolCall)
    bad = calls[1]
    assert isinstance(bad, InvalidToolCall)
    assert error_part in bad.error
    assert ID_RE.match(bad.id)
    assert bad.arguments  # the raw input is kept


def test_wire_unknown_tool_with_tools_given() -> None:
    (call,) = calls_from_wire([{"name": "nope", "arguments": {"x": 1}}], TOOLS)
    assert isinstance(call, InvalidToolCall)
    assert call.error == "unknown tool 'nope'; known: get_weather, get_time"
    assert call.name == "nope"
    assert json.loads(call.arguments) == {"x": 1}


def test_wire_item_error_extension_makes_the_call_invalid() -> None:
    (call,) = calls_from_wire(
        [{"name": "get_time", "arguments": '{"tz": "U', "error": "the tool call was cut off"}]
    )
    assert call == InvalidToolCall(
        id=call.id, name="get_time", arguments='{"tz": "U', error="the tool call was cut off"
    )


def test_wire_none_single_object_and_wrong_type() -> None:
    assert calls_from_wire(None) == []
    (one,) = calls_from_wire({"name": "get_time", "arguments": {}})
    assert summary(one) == ("ok", "get_time", {})
    (bad,) = calls_from_wire("get_time")
    assert isinstance(bad, InvalidToolCall)
    assert "must be a list" in bad.error
