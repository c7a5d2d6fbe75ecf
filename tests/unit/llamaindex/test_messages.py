"""ChatMessage <-> core Message conversion: every role, every block kind, legacy tool calls."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import ChatResult, InvalidToolCall, ToolCall, Usage
from llamaindex_cf_llama2._messages import (
    assistant_message,
    to_core_message,
    to_core_messages,
    tool_call_to_openai,
)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (MessageRole.SYSTEM, "system"),
        (MessageRole.DEVELOPER, "system"),
        (MessageRole.USER, "user"),
        (MessageRole.ASSISTANT, "assistant"),
        (MessageRole.CHATBOT, "assistant"),
        (MessageRole.MODEL, "assistant"),
        (MessageRole.TOOL, "tool"),
        (MessageRole.FUNCTION, "tool"),
    ],
)
def test_every_role_converts(role: MessageRole, expected: str) -> None:
    message = to_core_message(ChatMessage(role=role, content="hello"))
    assert message.role == expected
    assert message.content == "hello"


def test_text_blocks_are_joined_in_order() -> None:
    msg = ChatMessage(role="user", blocks=[TextBlock(text="one"), TextBlock(text="two")])
    assert to_core_message(msg).content == "one\ntwo"


def test_assistant_tool_call_blocks_become_tool_calls() -> None:
    msg = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="let me check"),
            ToolCallBlock(tool_call_id="c1", tool_name="get_weather", tool_kwargs={"city": "Oslo"}),
            ToolCallBlock(tool_call_id="c2", tool_name="get_time", tool_kwargs='{"tz": "UTC"}'),
        ],
    )
    core = to_core_message(msg)
    assert core.content == "let me check"
    assert core.tool_calls == [
        ToolCall(id="c1", name="get_weather", arguments={"city": "Oslo"}),
        ToolCall(id="c2", name="get_time", arguments={"tz": "UTC"}),
    ]


def test_tool_call_block_without_id_gets_a_stable_id() -> None:
    msg = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs={})])
    assert to_core_message(msg, index=3).tool_calls[0].id == "call_3_0"


def test_tool_result_keeps_tool_call_id_and_gets_the_name_of_its_call() -> None:
    history = [
        ChatMessage(role="user", content="weather?"),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="c9", tool_name="get_weather", tool_kwargs={})],
        ),
        ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c9"}),
    ]
    core = to_core_messages(history)
    assert core[2].role == "tool"
    assert core[2].tool_call_id == "c9"
    assert core[2].name == "get_weather"
    assert core[2].content == "sunny"


def test_tool_result_explicit_name_wins() -> None:
    msg = ChatMessage(
        role="tool", content="42", additional_kwargs={"tool_call_id": "x", "name": "calc"}
    )
    core = to_core_message(msg)
    assert (core.tool_call_id, core.name) == ("x", "calc")


def test_legacy_openai_tool_calls_in_additional_kwargs() -> None:
    msg = ChatMessage(
        role="assistant",
        content="",
        additional_kwargs={
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 2})},
                },
                # an object with attributes, like the OpenAI SDK's ChatCompletionMessageToolCall
                SimpleNamespace(
                    id="call_b",
                    type="function",
                    function=SimpleNamespace(name="mul", arguments='{"a": 3}'),
                ),
                {"id": "call_c", "name": "neg", "arguments": {"a": 5}},
            ]
        },
    )
    calls = to_core_message(msg).tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "add", {"a": 1, "b": 2}),
        ("call_b", "mul", {"a": 3}),
        ("call_c", "neg", {"a": 5}),
    ]


def test_blocks_win_over_legacy_tool_calls_so_our_own_answers_are_not_doubled() -> None:
    result = ChatResult(
        tool_calls=[ToolCall(id="c1", name="f", arguments={"x": 1})], finish_reason="tool_calls"
    )
    msg = assistant_message(result)  # has both blocks and additional_kwargs["tool_calls"]
    assert len(to_core_message(msg).tool_calls) == 1


def test_thinking_cache_and_citation_blocks() -> None:
    msg = ChatMessage(
        role="user",
        blocks=[
            ThinkingBlock(content="private"),
            CachePoint(cache_control=CacheControl(type="ephemeral")),
            CitableBlock(title="t", source="s", content=[TextBlock(text="cited text")]),
            CitationBlock(
                title="t",
                source="s",
                cited_content=TextBlock(text="quoted"),
                additional_location_info={},
            ),
            TextBlock(text="question"),
        ],
    )
    assert to_core_message(msg).content == "cited text\nquoted\nquestion"


@pytest.mark.parametrize(
    "block",
    [
        ImageBlock(image=b"\x89PNG\r\n\x1a\n", image_mimetype="image/png"),
        AudioBlock(audio=b"RIFF0000WAVE", format="wav"),
        VideoBlock(video=b"\x00\x00\x00\x18ftypmp42", video_mimetype="video/mp4"),
        DocumentBlock(data=b"%PDF-1.4", document_mimetype="application/pdf"),
    ],
)
def test_unsupported_blocks_raise_a_clear_error(block: object) -> None:
    msg = ChatMessage(role="user", blocks=[TextBlock(text="see"), block])
    with pytest.raises(RequestValidationError) as info:
        to_core_messages([msg])
    assert info.value.field == "messages[0].blocks[1]"
    assert "text only" in str(info.value)


def test_tool_calls_on_a_user_message_are_rejected() -> None:
    msg = ChatMessage(role="user", blocks=[ToolCallBlock(tool_name="f", tool_kwargs={})])
    with pytest.raises(RequestValidationError, match="only assistant messages call tools"):
        to_core_message(msg)


def test_malformed_arguments_name_the_field() -> None:
    msg = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs='{"a": ')])
    with pytest.raises(RequestValidationError) as info:
        to_core_message(msg)
    assert info.value.field == "messages[0].blocks[0].tool_kwargs"


def test_non_object_arguments_are_rejected() -> None:
    msg = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs="[1]")])
    with pytest.raises(RequestValidationError, match="JSON object"):
        to_core_message(msg)


def test_legacy_tool_call_without_name_is_rejected() -> None:
    msg = ChatMessage(
        role="assistant", content="", additional_kwargs={"tool_calls": [{"id": "c", "args": {}}]}
    )
    with pytest.raises(RequestValidationError, match="needs a tool name"):
        to_core_message(msg)


def test_non_chatmessage_input_is_rejected() -> None:
    with pytest.raises(RequestValidationError, match="ChatMessage"):
        to_core_messages([{"role": "user", "content": "hi"}])  # type: ignore[list-item]


def test_assistant_message_has_blocks_and_legacy_kwargs() -> None:
    result = ChatResult(
        response="calling",
        tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Rome"})],
        invalid_tool_calls=[InvalidToolCall(id="c2", name="bad", arguments="{", error="nope")],
        usage=Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        finish_reason="tool_calls",
    )
    msg = assistant_message(result)
    assert msg.role == MessageRole.ASSISTANT
    assert msg.content == "calling"
    blocks = [b for b in msg.blocks if isinstance(b, ToolCallBlock)]
    assert [(b.tool_call_id, b.tool_name, b.tool_kwargs) for b in blocks] == [
        ("c1", "get_weather", {"city": "Rome"})
    ]
    assert msg.additional_kwargs["tool_calls"] == [tool_call_to_openai(result.tool_calls[0])]
    assert msg.additional_kwargs["invalid_tool_calls"] == [
        {"id": "c2", "name": "bad", "arguments": "{", "error": "nope"}
    ]


def test_round_trip_of_an_answer_through_history() -> None:
    result = ChatResult(
        response="",
        tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Rome"})],
        finish_reason="tool_calls",
    )
    core = to_core_message(assistant_message(result))
    assert core.role == "assistant"
    assert core.tool_calls == result.tool_calls
    assert core.content == ""
