"""Message converters: LangChain messages -> core messages."""

from __future__ import annotations

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import ToolCall
from langchain_cf_llama2._messages import content_to_text, message_to_core, messages_to_core


def test_basic_roles() -> None:
    out = messages_to_core(
        [SystemMessage("be brief"), HumanMessage("hi"), AIMessage("hello"), HumanMessage("bye")]
    )
    assert [(m.role, m.content) for m in out] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "bye"),
    ]


def test_ai_tool_calls_and_tool_result_are_paired() -> None:
    ai = AIMessage(
        "",
        tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "abc123", "type": "tool_call"}],
    )
    out = messages_to_core([HumanMessage("1+2?"), ai, ToolMessage("3", tool_call_id="abc123")])
    assert out[1].tool_calls == [ToolCall(id="abc123", name="add", arguments={"a": 1, "b": 2})]
    # The ToolMessage had no name: it is named after the call it answers.
    assert (out[2].role, out[2].content, out[2].tool_call_id, out[2].name) == (
        "tool",
        "3",
        "abc123",
        "add",
    )


def test_ai_list_content_skips_tool_use_blocks() -> None:
    ai = AIMessage(
        [
            {"type": "text", "text": "some text"},
            {"type": "tool_use", "id": "abc123", "name": "add", "input": {"a": 1}},
        ],
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "abc123", "type": "tool_call"}],
    )
    core = message_to_core(ai)
    assert core.content == "some text"
    assert [c.name for c in core.tool_calls] == ["add"]


def test_ai_invalid_tool_calls_stay_visible() -> None:
    ai = AIMessage(
        "",
        invalid_tool_calls=[
            {
                "name": "add",
                "args": '{"a": ',
                "id": "x",
                "error": "bad",
                "type": "invalid_tool_call",
            }
        ],
    )
    assert '"add"' in message_to_core(ai).content


def test_tool_error_status_is_marked() -> None:
    msg = ToolMessage("division by zero", tool_call_id="1", name="div", status="error")
    assert message_to_core(msg).content == "Error: division by zero"


def test_function_message() -> None:
    core = message_to_core(FunctionMessage("42", name="answer"))
    assert (core.role, core.name, core.content) == ("tool", "answer", "42")


@pytest.mark.parametrize(
    ("role", "expected"),
    [("user", "user"), ("Assistant", "assistant"), ("developer", "system"), ("tool", "tool")],
)
def test_chat_message_roles(role: str, expected: str) -> None:
    assert message_to_core(ChatMessage("x", role=role)).role == expected


def test_chat_message_unknown_role() -> None:
    with pytest.raises(RequestValidationError, match="'narrator' is not a chat role") as info:
        message_to_core(ChatMessage("x", role="narrator"), index=3)
    assert info.value.field == "messages[3].role"


def test_text_blocks_are_joined() -> None:
    msg = HumanMessage(["a", {"type": "text", "text": "b"}, {"type": "text", "text": "c"}])
    assert message_to_core(msg).content == "abc"


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"},
        {"type": "file", "base64": "AAAA", "mime_type": "application/pdf"},
    ],
)
def test_non_text_blocks_raise_naming_the_type(block: dict[str, object]) -> None:
    msg = HumanMessage([{"type": "text", "text": "look"}, block])
    with pytest.raises(RequestValidationError, match=repr(block["type"])) as info:
        messages_to_core([SystemMessage("s"), msg])
    assert info.value.field == "messages[1].content[1].type"


def test_content_to_text_rejects_non_dict_items() -> None:
    with pytest.raises(RequestValidationError, match="must be a string or a content block"):
        content_to_text([1], where="x")  # type: ignore[list-item]


def test_unsupported_message_type() -> None:
    with pytest.raises(RequestValidationError, match="RemoveMessage"):
        message_to_core(RemoveMessage(id="1"))
