"""Request validation: both shapes, every range of the model page, errors that name the fix."""

from __future__ import annotations

import pytest

from cf_llama2 import (
    ChatRequest,
    Message,
    PromptRequest,
    RequestValidationError,
    ToolCall,
    parse_request,
)

USER = [{"role": "user", "content": "hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}


def test_defaults_follow_the_model_page() -> None:
    req = ChatRequest(messages=USER)
    assert req.max_tokens == 256
    assert req.temperature == 0.6
    assert req.stream is False
    assert req.tool_choice == "auto"
    assert req.sampling_wire() == {"stream": False, "max_tokens": 256, "temperature": 0.6}


@pytest.mark.parametrize(
    ("field", "value", "limit_words"),
    [
        ("temperature", 5.1, "0..5"),
        ("temperature", -0.1, "0..5"),
        ("top_p", 2.5, "0..2"),
        ("top_k", 0, "1..50"),
        ("top_k", 51, "1..50"),
        ("seed", 0, "1..9999999999"),
        ("seed", 10_000_000_000, "1..9999999999"),
        ("repetition_penalty", 2.01, "0..2"),
        ("frequency_penalty", -1, "0..2"),
        ("presence_penalty", 3, "0..2"),
        ("max_tokens", 0, ">= 1"),
    ],
)
def test_out_of_range_names_field_limit_and_value(
    field: str, value: float, limit_words: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        ChatRequest(messages=USER, **{field: value})
    err = info.value
    assert err.field == field
    assert err.value == value
    assert limit_words in str(err)
    assert field in str(err)
    assert repr(value) in str(err)


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 0), ("temperature", 5), ("top_k", 1), ("top_k", 50), ("seed", 9_999_999_999)],
)
def test_range_bounds_are_inclusive(field: str, value: float) -> None:
    assert getattr(ChatRequest(messages=USER, **{field: value}), field) == value


def test_unknown_parameter_is_refused_not_dropped() -> None:
    with pytest.raises(RequestValidationError, match="n"):
        ChatRequest(messages=USER, n=2)
    with pytest.raises(RequestValidationError, match="top_q"):
        PromptRequest(prompt="x", top_q=0.5)


def test_unknown_role_is_an_error_that_lists_roles() -> None:
    with pytest.raises(RequestValidationError) as info:
        ChatRequest(messages=[{"role": "narrator", "content": "x"}])
    assert "narrator" in str(info.value)
    assert "'system', 'user', 'assistant', 'tool'" in str(info.value)


def test_role_aliases_are_mapped() -> None:
    assert Message(role="human", content="x").role == "user"
    assert Message(role="AI", content="x").role == "assistant"


def test_content_limit() -> None:
    with pytest.raises(RequestValidationError, match="content"):
        Message(role="user", content="x" * 131073)


def test_prompt_limits() -> None:
    with pytest.raises(RequestValidationError, match="prompt"):
        PromptRequest(prompt="")
    with pytest.raises(RequestValidationError, match="prompt"):
        PromptRequest(prompt="x" * 131073)
    assert PromptRequest(prompt="x", raw=True).raw is True


def test_empty_messages_refused() -> None:
    with pytest.raises(RequestValidationError, match="messages"):
        ChatRequest(messages=[])


def test_tool_calls_only_on_assistant() -> None:
    call = ToolCall(id="c1", name="f", arguments={})
    assert Message(role="assistant", tool_calls=[call]).tool_calls == [call]
    with pytest.raises(RequestValidationError, match="only assistant"):
        Message(role="user", content="x", tool_calls=[call])


def test_tool_choice_validation() -> None:
    assert ChatRequest(messages=USER, tools=[WEATHER], tool_choice="any").tool_choice == "required"
    req = ChatRequest(messages=USER, tools=[WEATHER], tool_choice="get_weather")
    assert [t.name for t in req.forced_tools()] == ["get_weather"]
    with pytest.raises(RequestValidationError, match="not one of the tools"):
        ChatRequest(messages=USER, tools=[WEATHER], tool_choice="get_time")
    with pytest.raises(RequestValidationError, match="needs tools"):
        ChatRequest(messages=USER, tool_choice="required")
    assert ChatRequest(messages=USER, tools=[WEATHER], tool_choice="none").forced_tools() == []


def test_stop_sequences() -> None:
    assert ChatRequest(messages=USER, stop="END").stop == ["END"]
    with pytest.raises(RequestValidationError, match="stop"):
        ChatRequest(messages=USER, stop=["a", "b", "c", "d", "e"])
    with pytest.raises(RequestValidationError, match="non-empty"):
        ChatRequest(messages=USER, stop=[""])


def test_response_format_needs_schema() -> None:
    with pytest.raises(RequestValidationError, match="json_schema"):
        ChatRequest(messages=USER, response_format={"type": "json_schema"})


def test_parse_request_picks_the_shape() -> None:
    assert isinstance(parse_request({"messages": USER}), ChatRequest)
    assert isinstance(parse_request({"prompt": "x", "raw": True}), PromptRequest)
    with pytest.raises(RequestValidationError, match="exactly one"):
        parse_request({"messages": USER, "prompt": "x"})
    with pytest.raises(RequestValidationError, match="exactly one"):
        parse_request({"max_tokens": 3})
    with pytest.raises(RequestValidationError, match="JSON object"):
        parse_request([1, 2])  # type: ignore[arg-type]


def test_several_problems_reported_together() -> None:
    with pytest.raises(RequestValidationError) as info:
        ChatRequest(messages=USER, temperature=9, top_k=99)
    assert "2 problems" in str(info.value)
    assert "temperature" in str(info.value)
    assert "top_k" in str(info.value)
