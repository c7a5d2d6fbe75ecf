"""bind_tools converters: every tool kind -> one core Tool; tool_choice mapping."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import ChatRequest
from cf_llama2.tools import Tool
from langchain_cf_llama2._tools import convert_tool, convert_tool_choice, convert_tools

PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city name."}},
    "required": ["city"],
}
FLAT = {"name": "get_weather", "description": "Get the weather in a city.", "parameters": PARAMS}
WRAPPED = {"type": "function", "function": FLAT}


class get_weather(BaseModel):
    """Get the weather in a city."""

    city: str = Field(description="The city name.")


class GetWeatherDict(TypedDict):
    """Get the weather in a city."""

    city: Annotated[str, ..., "The city name."]


@tool(parse_docstring=True)
def get_weather_tool(city: str) -> str:
    """Get the weather in a city.

    Args:
        city: The city name.
    """
    return f"sunny in {city}"


def get_weather_fn(city: str) -> str:
    """Get the weather in a city.

    Args:
        city: The city name.
    """
    return f"sunny in {city}"


def test_flat_wrapped_and_pydantic_give_the_same_tool() -> None:
    tools = [convert_tool(FLAT), convert_tool(WRAPPED), convert_tool(get_weather)]
    assert tools[0] == tools[1] == tools[2]
    assert tools[0].to_wire("function") == WRAPPED


def test_json_schema_equals_pydantic() -> None:
    assert convert_tool(get_weather.model_json_schema()) == convert_tool(get_weather)


@pytest.mark.parametrize("given", [GetWeatherDict, get_weather_tool, get_weather_fn])
def test_other_kinds_have_the_same_parameters(given: Any) -> None:
    converted = convert_tool(given)
    assert converted.parameters == PARAMS
    assert converted.description.startswith("Get the weather in a city.")


def test_property_called_title_is_kept() -> None:
    class Book(BaseModel):
        """A book."""

        title: str = Field(description="Its title.")

    assert "title" in convert_tool(Book).parameters["properties"]


def test_duplicates_are_merged_but_conflicts_raise() -> None:
    assert len(convert_tools([get_weather, get_weather.model_json_schema(), FLAT])) == 1
    other = {"name": "get_weather", "description": "Another.", "parameters": {}}
    with pytest.raises(RequestValidationError, match="used twice"):
        convert_tools([FLAT, other])


def test_not_a_tool() -> None:
    with pytest.raises(RequestValidationError, match="cannot turn int into a tool"):
        convert_tool(3)


def test_bad_schema_names_the_field() -> None:
    bad = {"name": "t", "parameters": {"type": "object", "properties": {}, "required": ["x"]}}
    with pytest.raises(RequestValidationError) as info:
        convert_tool(bad)
    assert info.value.field == "tools[t].parameters.required"


TOOLS = [Tool(name="a"), Tool(name="b")]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        ("b", "b"),
        ({"type": "function", "function": {"name": "a"}}, "a"),
        ({"type": "tool", "name": "b"}, "b"),
        ({"type": "any"}, "required"),
        (False, "none"),
    ],
)
def test_tool_choice(choice: Any, expected: str | None) -> None:
    got = convert_tool_choice(choice, TOOLS)
    assert got == expected
    if got is not None:  # the core request accepts every mapped value
        ChatRequest(messages=[{"role": "user", "content": "x"}], tools=TOOLS, tool_choice=got)


def test_tool_choice_true_needs_exactly_one_tool() -> None:
    assert convert_tool_choice(True, TOOLS[:1]) == "required"
    with pytest.raises(RequestValidationError, match="2 were given"):
        convert_tool_choice(True, TOOLS)


@pytest.mark.parametrize(
    ("choice", "match"),
    [
        ("c", r"'c' is not one of the tools \(a, b\)"),
        ({"type": "function", "function": {"name": "zz"}}, "'zz' is not one of the tools"),
        (3, "tool_choice must be"),
        ({"foo": 1}, "tool_choice must be"),
    ],
)
def test_bad_tool_choice(choice: Any, match: str) -> None:
    with pytest.raises(RequestValidationError, match=match):
        convert_tool_choice(choice, TOOLS)


def test_forcing_without_tools_raises() -> None:
    with pytest.raises(RequestValidationError, match="needs tools"):
        convert_tool_choice("any", [])
