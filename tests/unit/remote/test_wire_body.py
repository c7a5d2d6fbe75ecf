"""Request bodies and the options header: exactly what the model page describes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.prompt import tool_system_prompt
from cf_llama2.schema import ChatRequest, Message, PromptRequest, ToolCall
from cf_llama2.wire import (
    body_to_request,
    request_options_header,
    request_to_body,
    response_format_instruction,
    sent_tools,
)

from .conftest import TIME_TOOL, WEATHER_TOOL


def _chat(**kwargs: Any) -> ChatRequest:
    kwargs.setdefault("messages", [{"role": "user", "content": "Weather in Paris?"}])
    return ChatRequest(**kwargs)


def test_plain_chat_body_is_exact_and_valid(input_schema: dict[str, Any]) -> None:
    request = _chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        temperature=0.2,
        top_k=5,
        seed=42,
    )
    body = request_to_body(request)
    assert body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "stream": False,
        "max_tokens": 256,
        "temperature": 0.2,
        "top_k": 5,
        "seed": 42,
    }
    jsonschema.validate(body, input_schema)
    assert request_options_header(request) is None


def test_prompt_body_is_exact_and_valid(input_schema: dict[str, Any]) -> None:
    request = PromptRequest(
        prompt="[INST] hi [/INST]",
        raw=True,
        stream=True,
        max_tokens=10,
        top_p=0.9,
        repetition_penalty=1.1,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        lora="my-adapter",
    )
    body = request_to_body(request)
    assert body == {
        "prompt": "[INST] hi [/INST]",
        "raw": True,
        "stream": True,
        "max_tokens": 10,
        "temperature": 0.6,
        "top_p": 0.9,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "lora": "my-adapter",
    }
    jsonschema.validate(body, input_schema)
    assert "raw" not in request_to_body(PromptRequest(prompt="hi"))


@pytest.mark.parametrize("form", ["function", "flat"])
def test_both_tool_forms_validate_against_the_model_page(
    form: str, input_schema: dict[str, Any]
) -> None:
    request = _chat(tools=[WEATHER_TOOL, TIME_TOOL], functions=[{"name": "f", "code": "x()"}])
    body = request_to_body(request, tool_format=form)  # type: ignore[arg-type]
    jsonschema.validate(body, input_schema)
    tools = body["tools"]
    assert [t["function"]["name"] if form == "function" else t["name"] for t in tools] == [
        "get_weather",
        "get_time",
    ]
    if form == "function":
        assert all(t["type"] == "function" and set(t) == {"type", "function"} for t in tools)
        weather = tools[0]["function"]
    else:
        assert all(set(t) == {"name", "description", "parameters"} for t in tools)
        weather = tools[0]
    assert weather["parameters"]["required"] == ["city"]
    # The model page requires a description on every property: one is filled in.
    assert weather["parameters"]["properties"]["unit"]["description"]
    assert body["functions"] == [{"name": "f", "code": "x()"}]
    # The instruction that teaches Llama 2 the call format is in the system message.
    assert body["messages"][0]["role"] == "system"
    assert '{"name": "<tool name>", "arguments"' in body["messages"][0]["content"]
    # Each tool in the flat form is valid against the flat branch alone, and vice versa.
    item_schemas = input_schema["oneOf"][1]["properties"]["tools"]["items"]["oneOf"]
    branch = item_schemas[0] if form == "flat" else item_schemas[1]
    for tool in tools:
        jsonschema.validate(tool, branch)


def test_auto_tools_flag_the_merged_instruction() -> None:
    request = _chat(tools=[WEATHER_TOOL])
    assert json.loads(request_options_header(request) or "") == {"instructions_in_prompt": True}
    back = body_to_request(request_to_body(request), request_options_header(request))
    assert isinstance(back, ChatRequest)
    assert [(m.role, m.content) for m in back.messages] == [("user", "Weather in Paris?")]


def test_tool_choice_none_sends_no_tools_and_no_instruction(
    input_schema: dict[str, Any],
) -> None:
    request = _chat(tools=[WEATHER_TOOL], tool_choice="none")
    body = request_to_body(request)
    assert "tools" not in body
    assert body["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert json.loads(request_options_header(request) or "") == {"tool_choice": "none"}
    jsonschema.validate(body, input_schema)


def test_named_tool_choice_sends_only_that_tool_with_an_instruction() -> None:
    request = _chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="get_time")
    body = request_to_body(request, tool_format="flat")
    assert [t["name"] for t in body["tools"]] == ["get_time"]
    assert 'You must call the tool "get_time"' in body["messages"][0]["content"]
    assert [t.name for t in sent_tools(request)] == ["get_time"]
    header = json.loads(request_options_header(request) or "")
    assert header == {"tool_choice": "get_time", "instructions_in_prompt": True}


def test_required_tool_choice_sends_all_tools() -> None:
    request = _chat(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="any")
    body = request_to_body(request)
    assert len(body["tools"]) == 2
    assert "You must call one of these tools" in body["messages"][0]["content"]


def test_stop_and_response_format_travel_in_the_header() -> None:
    # Property order is the order of the answer: "b" before "a" must survive both renderings.
    schema = {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}
    request = _chat(
        messages=[{"role": "system", "content": "Sys"}, {"role": "user", "content": "Q"}],
        stop=["\nUser:", "###"],
        response_format={"type": "json_schema", "json_schema": schema},
    )
    body = request_to_body(request)
    assert "stop" not in body
    assert "response_format" not in body
    system = body["messages"][0]["content"]
    assert system.startswith("Sys\n\n")
    assert system.endswith(json.dumps(schema, separators=(",", ":")))
    header = request_options_header(request)
    assert header is not None
    assert header.isascii()
    assert header.index('"b"') < header.index('"a"')
    assert json.loads(header) == {
        "stop": ["\nUser:", "###"],
        "response_format": {"type": "json_schema", "json_schema": schema},
        "instructions_in_prompt": True,
    }


def test_tool_history_is_rendered_into_content(input_schema: dict[str, Any]) -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    request = _chat(
        messages=[
            Message(role="user", content="Weather?"),
            Message(role="assistant", content="", tool_calls=[call]),
            Message(role="tool", content="18C", tool_call_id="call_1"),
        ],
        tools=[WEATHER_TOOL],
    )
    body = request_to_body(request)
    jsonschema.validate(body, input_schema)
    assert all(set(m) == {"role", "content"} for m in body["messages"])
    assert json.loads(body["messages"][2]["content"]) == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    # named by its tool: the caller's call id (often random) would make each run a new prompt
    assert body["messages"][3]["content"] == "Tool result (get_weather): 18C"


# -- server side --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        _chat(
            messages=[{"role": "system", "content": "Sys"}, {"role": "user", "content": "Q"}],
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice="get_weather",
            stop=["###"],
        ),
        _chat(tools=[WEATHER_TOOL], tool_choice="required", temperature=0, seed=7),
        _chat(
            response_format={"type": "json_object"},
            messages=[{"role": "user", "content": "JSON please"}],
        ),
        _chat(tools=[WEATHER_TOOL], tool_choice="none"),
        PromptRequest(prompt="Tell me", response_format={"type": "json_object"}, stop="."),
        PromptRequest(prompt="[INST] x [/INST]", raw=True, max_tokens=3),
    ],
    ids=["named", "required", "json", "none", "prompt-json", "raw"],
)
def test_body_to_request_round_trips(request_: ChatRequest | PromptRequest) -> None:
    body = json.loads(json.dumps(request_to_body(request_)))
    back = body_to_request(body, request_options_header(request_))
    assert type(back) is type(request_)
    assert back.stop == request_.stop
    assert back.response_format == request_.response_format
    assert back.max_tokens == request_.max_tokens
    if isinstance(request_, PromptRequest):
        assert isinstance(back, PromptRequest)
        assert back.prompt == request_.prompt
        return
    assert isinstance(back, ChatRequest)
    assert back.tool_choice == request_.tool_choice
    assert back.tools == sent_tools(request_)
    # The instructions the client merged are taken out again: the server renders its own.
    assert [(m.role, m.content) for m in back.messages] == [
        (m.role, m.content) for m in request_.messages
    ]


def test_body_to_request_without_header_keeps_the_prompt_as_sent() -> None:
    request = _chat(tools=[WEATHER_TOOL])
    body = request_to_body(request)
    back = body_to_request(body)
    assert isinstance(back, ChatRequest)
    assert back.messages[0].content == tool_system_prompt(sent_tools(request))
    assert back.tools == sent_tools(request)


@pytest.mark.parametrize(
    ("body", "header", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 9}, None, "temperature"),
        ({"prompt": "x", "messages": []}, None, "prompt"),
        ([1, 2], None, ""),
        ({"prompt": "x"}, "{not json", "cf-llama2-options"),
        ({"prompt": "x"}, "[1]", "cf-llama2-options"),
        ({"prompt": "x"}, '{"n": 2}', "cf-llama2-options"),
        ({"prompt": "x"}, '{"tool_choice": "none"}', "tool_choice"),
        ({"messages": [{"role": "user", "content": "x"}]}, '{"tool_choice": "nope"}', ""),
    ],
)
def test_body_to_request_rejects_bad_input(body: Any, header: str | None, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        body_to_request(body, header)
    if field:
        assert info.value.field == field
    assert str(info.value)


def test_response_format_instruction_names_the_schema() -> None:
    from cf_llama2.schema import ResponseFormat

    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    text = response_format_instruction(ResponseFormat(json_schema=schema))
    assert json.loads(text.rsplit(": ", 1)[1]) == schema
    assert "JSON" in response_format_instruction(ResponseFormat(type="json_object"))
