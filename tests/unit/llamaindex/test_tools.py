"""LlamaIndex tools and tool dicts -> core tools; tool_choice / tool_required mapping."""

from __future__ import annotations

import json

import pytest
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.tools import FunctionTool, QueryEngineTool
from pydantic import BaseModel, Field

from cf_llama2.errors import RequestValidationError
from cf_llama2.tools import Tool
from cf_llama2.tools._refs import inline_refs
from llamaindex_cf_llama2._tools import (
    resolve_tool_choice,
    to_core_tool,
    to_core_tools,
)


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city."""
    return f"sunny in {city}"


class EchoEngine(CustomQueryEngine):
    """A query engine that needs no model."""

    def custom_query(self, query_str: str) -> str:
        return query_str


FLAT = {
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
}


def test_function_tool() -> None:
    tool = to_core_tool(FunctionTool.from_defaults(get_weather))
    assert tool.name == "get_weather"
    assert "weather" in tool.description
    assert set(tool.parameters["properties"]) == {"city", "unit"}
    assert tool.parameters["required"] == ["city"]


def test_function_tool_with_pydantic_schema() -> None:
    class Args(BaseModel):
        query: str = Field(description="what to search")
        limit: int = 3

    def search(query: str, limit: int = 3) -> str:
        return query

    tool = to_core_tool(FunctionTool.from_defaults(search, name="search", fn_schema=Args))
    props = tool.parameters["properties"]
    assert props["query"]["description"] == "what to search"
    assert props["limit"]["type"] == "integer"


def test_query_engine_tool() -> None:
    qe_tool = QueryEngineTool.from_defaults(
        query_engine=EchoEngine(), name="docs", description="Search the docs."
    )
    tool = to_core_tool(qe_tool)
    assert tool.name == "docs"
    assert tool.description == "Search the docs."
    assert tool.parameters["required"] == ["input"]


def test_flat_and_function_wrapped_dicts_and_core_tools() -> None:
    wrapped = {"type": "function", "function": FLAT}
    core = Tool(name="x", description="d")
    tools = to_core_tools([FLAT, {**wrapped, "function": {**FLAT, "name": "lookup2"}}, core])
    assert [t.name for t in tools] == ["lookup", "lookup2", "x"]
    assert tools[0] == tools[1].model_copy(update={"name": "lookup"})


def test_plain_function_is_rejected_with_the_fix() -> None:
    with pytest.raises(RequestValidationError, match=r"FunctionTool\.from_defaults"):
        to_core_tool(get_weather)


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(RequestValidationError, match="used twice"):
        to_core_tools([FLAT, FLAT])


def test_invalid_schema_names_the_tool() -> None:
    bad = {"name": "bad", "parameters": {"type": "array"}}
    with pytest.raises(RequestValidationError, match=r"tools\[bad\]"):
        to_core_tool(bad)


TOOLS = [Tool(name="a"), Tool(name="b")]


@pytest.mark.parametrize(
    ("choice", "required", "expected"),
    [
        (None, False, "auto"),
        (None, True, "required"),
        ("auto", True, "required"),
        ("auto", False, "auto"),
        ("none", False, "none"),
        ("any", False, "required"),
        ("required", False, "required"),
        ("b", False, "b"),
        ("b", True, "b"),
        ({"type": "function", "function": {"name": "a"}}, False, "a"),
        ({"type": "tool", "name": "b"}, False, "b"),
        ({"type": "any"}, False, "required"),
    ],
)
def test_resolve_tool_choice(choice: object, required: bool, expected: str) -> None:
    assert resolve_tool_choice(choice, required, TOOLS) == expected


def test_unknown_tool_name_lists_the_tools() -> None:
    with pytest.raises(RequestValidationError, match=r"not one of the tools \(a, b\)"):
        resolve_tool_choice("c", False, TOOLS)


def test_tool_required_with_none_is_a_contradiction() -> None:
    with pytest.raises(RequestValidationError, match="contradicts"):
        resolve_tool_choice("none", True, TOOLS)


def test_forced_call_needs_tools() -> None:
    with pytest.raises(RequestValidationError, match="needs tools"):
        resolve_tool_choice(None, True, [])


def test_malformed_choice() -> None:
    with pytest.raises(RequestValidationError, match="tool_choice must be"):
        resolve_tool_choice(3, False, TOOLS)


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    """A shop order."""

    customer: str
    items: list[Item]
    gift: Item | None = Field(default=None, description="an optional gift")


def test_nested_models_are_written_out_without_refs() -> None:
    tool = to_core_tool(FunctionTool.from_defaults(lambda **kw: kw, name="order", fn_schema=Order))
    params = tool.parameters
    assert "$defs" not in params
    assert "$ref" not in json.dumps(params)
    item = params["properties"]["items"]["items"]
    assert item["properties"]["quantity"]["type"] == "integer"
    assert item["additionalProperties"] is False
    wire = tool.to_wire("flat")["parameters"]["properties"]
    assert wire["items"]["type"] == "array"


def test_ref_siblings_are_kept() -> None:
    schema = {
        "type": "object",
        "properties": {"gift": {"$ref": "#/$defs/Item", "description": "a gift"}},
        "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    out = inline_refs(schema)
    assert out["properties"]["gift"]["description"] == "a gift"
    assert out["properties"]["gift"]["properties"] == {"name": {"type": "string"}}


def test_a_property_named_definitions_survives() -> None:
    schema = {"type": "object", "properties": {"definitions": {"type": "string"}}}
    assert inline_refs(schema) == schema


def test_dict_tools_with_defs_are_inlined() -> None:
    spec = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {"x": {"$ref": "#/definitions/X"}},
                "definitions": {"X": {"type": "integer"}},
            },
        },
    }
    assert to_core_tool(spec).parameters["properties"]["x"] == {"type": "integer"}


def test_recursive_models_raise_a_clear_error() -> None:
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        },
    }
    with pytest.raises(RequestValidationError, match=r"recursive \(Node -> Node\)"):
        inline_refs(schema, tool="tree")


def test_dangling_ref_raises() -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}, "$defs": {}}
    with pytest.raises(RequestValidationError, match="does not point into its"):
        inline_refs(schema)
