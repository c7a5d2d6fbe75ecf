"""Tool definitions: both wire forms normalise to one Tool and render back schema-valid."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2 import RequestValidationError, Tool, normalize_tool
from cf_llama2.tools import normalize_functions, normalize_tools, validate_parameters

PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
}
FLAT = {"name": "get_weather", "description": "Weather for a city", "parameters": PARAMS}
WRAPPED = {"type": "function", "function": FLAT}


def test_both_forms_give_the_same_tool() -> None:
    assert normalize_tool(FLAT) == normalize_tool(WRAPPED)
    assert normalize_tool(normalize_tool(FLAT)) == normalize_tool(FLAT)


def test_render_both_wire_forms() -> None:
    tool = normalize_tool(FLAT)
    flat = tool.to_wire("flat")
    wrapped = tool.to_wire("function")
    assert wrapped == {"type": "function", "function": flat}
    assert flat["name"] == "get_weather"
    # The model page requires type and description on every property: filled when missing.
    assert flat["parameters"]["properties"]["unit"] == {
        "type": "string",
        "enum": ["c", "f"],
        "description": "unit",
    }
    assert flat["parameters"]["required"] == ["city"]
    assert normalize_tool(flat) == normalize_tool(wrapped)


def test_optional_property_type_is_inferred_for_the_wire() -> None:
    tool = normalize_tool(
        {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            },
        }
    )
    prop = tool.to_wire("flat")["parameters"]["properties"]["x"]
    assert prop["type"] == "integer"
    assert prop["anyOf"] == [{"type": "integer"}, {"type": "null"}]


def test_missing_parameters_mean_no_arguments() -> None:
    tool = normalize_tool({"name": "now", "description": "time"})
    assert tool.parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"type": "array"}, "must be 'object'"),
        ({"type": "object", "properties": []}, "properties must be a mapping"),
        ({"type": "object", "properties": {"a": 3}}, "properties.a must be a JSON schema"),
        ({"type": "object", "properties": {"a": {"type": "str"}}}, "JSON-schema type"),
        ({"type": "object", "properties": {}, "required": ["a"]}, "not in properties"),
        ({"type": "object", "properties": {}, "required": "a"}, "list of property names"),
        ("nope", "must be a JSON-schema object"),
    ],
)
def test_bad_parameters_are_explained(params: Any, match: str) -> None:
    with pytest.raises(RequestValidationError, match=match) as info:
        normalize_tool({"name": "f", "description": "", "parameters": params})
    assert "tools[f].parameters" in str(info.value)


def test_bad_shapes() -> None:
    with pytest.raises(RequestValidationError, match="non-empty 'name'"):
        normalize_tool({"description": "x"})
    with pytest.raises(RequestValidationError, match="type 'function'"):
        normalize_tool({"type": "retrieval", "function": FLAT})
    with pytest.raises(RequestValidationError, match="flat form"):
        normalize_tool(42)
    with pytest.raises(RequestValidationError, match=r"1\.\.64"):
        normalize_tool({"name": "has space"})
    with pytest.raises(RequestValidationError, match="used twice"):
        normalize_tools([FLAT, WRAPPED])


def test_validate_parameters_does_not_mutate_input() -> None:
    params = {"properties": {"a": {"type": "string"}}}
    out = validate_parameters(params)
    assert out["type"] == "object"
    assert "type" not in params


def test_functions_list() -> None:
    (f,) = normalize_functions([{"name": "add", "code": "return a + b"}])
    assert f.name == "add"
    with pytest.raises(RequestValidationError, match="code"):
        normalize_functions([{"name": "add"}])


def test_tool_is_hashable_and_frozen() -> None:
    tool = Tool(name="a")
    with pytest.raises(Exception, match="frozen"):
        tool.name = "b"  # type: ignore[misc]


def test_nested_models_are_written_out_for_every_form() -> None:
    params = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "required": ["items"],
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            }
        },
    }
    tool = normalize_tool({"type": "function", "function": {"name": "order", "parameters": params}})
    assert "$defs" not in tool.parameters
    item = tool.parameters["properties"]["items"]["items"]
    assert item["properties"]["qty"] == {"type": "integer"}
    assert item["additionalProperties"] is False
    assert "$ref" not in str(tool.to_wire("flat"))
    assert tool.to_wire("flat")["parameters"]["properties"]["items"]["type"] == "array"
    with pytest.raises(RequestValidationError, match="does not point"):
        normalize_tool({"name": "f", "parameters": {"properties": {"x": {"$ref": "#/$defs/X"}}}})
