"""Tool history in the shapes real clients send: Workers AI flat, OpenAI, with or without ids."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2 import ChatRequest, RequestValidationError
from cf_llama2.schema import Message

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def chat(messages: list[dict[str, Any]], **fields: Any) -> ChatRequest:
    return ChatRequest(messages=messages, tools=[WEATHER], **fields)


def test_openai_shape_without_ids_matches_results_by_order() -> None:
    request = chat(
        [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                    },
                ],
            },
            {"role": "tool", "content": "sunny"},
            {"role": "tool", "content": "rainy"},
        ]
    )
    calls = request.messages[1].tool_calls
    assert [(c.id, c.arguments) for c in calls] == [
        ("call_1_0", {"city": "Paris"}),
        ("call_1_1", {"city": "Rome"}),
    ]
    assert request.messages[1].content == ""
    assert [m.tool_call_id for m in request.messages[2:]] == ["call_1_0", "call_1_1"]


def test_ids_are_kept_and_results_matched_by_id_first() -> None:
    request = chat(
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "a", "name": "get_weather", "arguments": "{}"},
                    {"id": "b", "name": "get_weather", "arguments": None},
                ],
            },
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "tool", "content": "1"},
        ]
    )
    assert [c.id for c in request.messages[1].tool_calls] == ["a", "b"]
    assert [m.tool_call_id for m in request.messages[2:]] == ["b", "a"]


def test_content_as_text_parts_and_developer_role() -> None:
    request = chat(
        [
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "text", "text": "one"}, "two"]},
        ]
    )
    assert request.messages[0].role == "system"
    assert request.messages[1].content == "one\ntwo"


def test_a_single_message_accepts_the_same_shapes() -> None:
    message = Message(
        role="assistant",
        content=None,
        tool_calls=[{"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    )
    assert message.content == ""
    assert message.tool_calls[0].id == "call_0"
    assert message.tool_calls[0].arguments == {"a": 1}


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
            "messages.0.content.0",
            "text part",
        ),
        (
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]},
            "messages.0.tool_calls.0.function.arguments",
            "not JSON",
        ),
        (
            {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "[1, 2]"}]},
            "messages.0.tool_calls.0.arguments",
            "JSON object",
        ),
        (
            {"role": "assistant", "tool_calls": [{"arguments": {}}]},
            "messages.0.tool_calls.0.name",
            "needs the name",
        ),
        (
            {"role": "assistant", "tool_calls": [{"type": "custom", "function": {"name": "f"}}]},
            "messages.0.tool_calls.0.type",
            "'function'",
        ),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_field(
    message: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(RequestValidationError, match=words) as error:
        ChatRequest(messages=[message])
    assert error.value.field == field


def test_wrong_types_are_still_refused() -> None:
    with pytest.raises(RequestValidationError, match="content"):
        ChatRequest(messages=[{"role": "user", "content": 5}])
    with pytest.raises(RequestValidationError, match="role"):
        ChatRequest(messages=[{"role": "robot", "content": "x"}])
    with pytest.raises(RequestValidationError, match="refusal: Extra inputs"):
        ChatRequest(messages=[{"role": "user", "content": "x", "refusal": None}])
