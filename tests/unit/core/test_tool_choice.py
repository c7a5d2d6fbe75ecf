"""One ``tool_choice`` normaliser for the schema, the prompt, both adapters and the server."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.prompt import tool_system_prompt
from cf_llama2.schema import ChatRequest, parse_request
from cf_llama2.tools import Tool, normalize_tool_choice

TOOLS = [Tool(name="a"), Tool(name="b")]
USER = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, "auto"),
        ("auto", "auto"),
        (" ANY ", "required"),
        ("required", "required"),
        ("none", "none"),
        (False, "none"),
        ("b", "b"),
        (TOOLS[0], "a"),
        ({"type": "function", "function": {"name": "a"}}, "a"),
        ({"type": "tool", "name": "b"}, "b"),
        ({"type": "function", "name": "b"}, "b"),
        ({"type": "any"}, "required"),
    ],
)
def test_every_form_users_pass(choice: Any, expected: str) -> None:
    assert normalize_tool_choice(choice, TOOLS) == expected
    assert ChatRequest(messages=USER, tools=TOOLS, tool_choice=choice).tool_choice == expected


def test_true_forces_the_one_tool() -> None:
    assert normalize_tool_choice(True, TOOLS[:1]) == "required"
    with pytest.raises(RequestValidationError, match="2 were given"):
        normalize_tool_choice(True, TOOLS)


def test_the_openai_dict_is_accepted_on_the_wire() -> None:
    body = {
        "messages": USER,
        "tools": [{"name": "a", "description": "", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "function": {"name": "a"}},
    }
    request = parse_request(body)
    assert isinstance(request, ChatRequest)
    assert request.tool_choice == "a"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: normalize_tool_choice("c", TOOLS), r"'c' is not one of the tools \(a, b\)"),
        (lambda: ChatRequest(messages=USER, tools=TOOLS, tool_choice="c"), "not one of the tools"),
        (lambda: tool_system_prompt(TOOLS, "c"), r"'c' is not one of the tools \(a, b\)"),
        (lambda: normalize_tool_choice("any", []), "'any' needs tools; pass tools="),
        (lambda: tool_system_prompt([], "required"), "'required' needs tools; pass tools="),
        (lambda: normalize_tool_choice(3), "tool_choice must be 'auto', 'any'/'required'"),
        (lambda: normalize_tool_choice({"foo": 1}, TOOLS), "tool_choice must be"),
    ],
)
def test_one_wording_for_what_is_refused(call: Any, message: str) -> None:
    with pytest.raises(RequestValidationError, match=message) as err:
        call()
    assert err.value.field.endswith("tool_choice")
