"""A tool's arguments as prompt lines (:mod:`cf_llama2.tools.describe`): every argument is named
with its type, whether it is required and its description, and nothing of a structured argument's
schema is lost."""

from __future__ import annotations

import json

from cf_llama2.tools.describe import describe_parameters


def test_one_line_per_argument_with_type_requiredness_default_and_description() -> None:
    lines = describe_parameters(
        {
            "type": "object",
            "properties": {
                "mass": {"type": "number", "description": "The mass in kg."},
                "unit": {"type": "string", "enum": ["kg/m3", "g/cm3"], "default": "kg/m3"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "id": {"type": ["integer", "string"]},
                "mode": {"const": "fast"},
                "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["mass"],
        }
    )
    assert lines == [
        "  arguments:",
        "  - mass (number, required): The mass in kg.",
        '  - unit (one of "kg/m3", "g/cm3", optional, default "kg/m3")',
        "  - tags (array of string, optional)",
        "  - id (integer or string, optional)",
        '  - mode (always "fast", optional)',
        "  - when (string or null, optional)",
    ]


def test_a_structured_argument_keeps_its_schema() -> None:
    point = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    lines = describe_parameters(
        {
            "type": "object",
            "properties": {
                "origin": {**point, "description": "Where to start."},
                "path": {"type": "array", "items": point},
            },
        }
    )
    assert lines[1] == f"  - origin (object, optional): Where to start. Schema: {json.dumps(point)}"
    assert lines[2].startswith("  - path (array of object, optional) Schema: ")
    assert json.loads(lines[2].split("Schema: ", 1)[1]) == {"type": "array", "items": point}


def test_no_arguments_and_free_form_arguments() -> None:
    assert describe_parameters({"type": "object", "properties": {}}) == [
        "  arguments: none (an empty object)"
    ]
    assert describe_parameters({"type": "object"}) == ["  arguments: any JSON object"]


def test_the_prompt_lists_arguments_by_default_and_schemas_on_request() -> None:
    from cf_llama2.prompt import flatten_messages
    from cf_llama2.schema import Message
    from cf_llama2.tools import Tool

    params = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    }
    tool = Tool(name="get_weather", description="Weather.", parameters=params)
    messages = [Message(role="user", content="Paris?")]
    lines = flatten_messages(messages, tools=[tool])[0]["content"]
    schemas = flatten_messages(messages, tools=[tool], tool_schemas=True)[0]["content"]
    assert "  - city (string, required): City name" in lines
    assert json.dumps(params) not in lines
    assert f"arguments (JSON schema): {json.dumps(params)}" in schemas
