"""Core results and stream events -> ChatResponse / CompletionResponse."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import TextBlock, ToolCallBlock

from cf_llama2.errors import IncompleteStreamError
from cf_llama2.schema import (
    ChatResult,
    EndEvent,
    InvalidToolCall,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from cf_llama2.schema.reducer import reduce_events
from cf_llama2.testing import result_to_events
from llamaindex_cf_llama2._responses import (
    ChatStreamConverter,
    CompletionStreamConverter,
    chat_response,
    completion_response,
)

USAGE = Usage(prompt_tokens=11, completion_tokens=7, total_tokens=18)


def test_chat_response_reports_usage_like_other_llamaindex_llms() -> None:
    result = ChatResult(response="hi", usage=USAGE, model="m")
    response = chat_response(result)
    assert response.message.content == "hi"
    assert response.additional_kwargs == {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
    }
    assert response.raw is not None
    assert response.raw["usage"] == USAGE.model_dump()
    assert response.raw["finish_reason"] == "stop"
    assert response.raw["model"] == "m"


def test_chat_response_without_usage_has_no_counts() -> None:
    assert chat_response(ChatResult(response="x")).additional_kwargs == {}


def test_completion_response() -> None:
    call = ToolCall(id="c", name="f", arguments={})
    result = ChatResult(
        response="text",
        usage=USAGE,
        tool_calls=[call],
        invalid_tool_calls=[InvalidToolCall(id="d", error="bad")],
    )
    response = completion_response(result)
    assert response.text == "text"
    assert response.additional_kwargs["total_tokens"] == 18
    assert response.additional_kwargs["tool_calls"][0]["function"]["name"] == "f"
    assert response.additional_kwargs["invalid_tool_calls"][0]["error"] == "bad"
    assert response.raw is not None
    assert response.raw["response"] == "text"


def test_chat_stream_text_deltas_and_final_chunk_equal_the_reduced_result() -> None:
    result = ChatResult(response="Hello big world", usage=USAGE, model="m")
    events = result_to_events(result)
    conv = ChatStreamConverter(model="m")
    chunks = [c for e in events if (c := conv.feed(e)) is not None]
    assert [c.delta for c in chunks] == ["Hello ", "big ", "world", ""]
    assert [c.message.content for c in chunks[:3]] == ["Hello ", "Hello big ", "Hello big world"]
    final = chunks[-1]
    assert final.message.content == "Hello big world"
    assert final.additional_kwargs["total_tokens"] == 18
    assert final.raw == chat_response(reduce_events(events, model="m")).raw
    assert conv.finish().response == "Hello big world"


def test_chat_stream_partial_tool_calls_then_complete_calls() -> None:
    events = [
        TextDelta(text=""),
        ToolCallDelta(index=0, id="c1", name="get_weather", arguments='{"ci'),
        ToolCallDelta(index=0, arguments='ty": "Paris"}'),
        UsageEvent(usage=USAGE),
        EndEvent(finish_reason="tool_calls", model="m"),
    ]
    conv = ChatStreamConverter()
    chunks = [c for e in events if (c := conv.feed(e)) is not None]
    assert len(chunks) == 3  # two partial tool-call chunks and the final one
    first_blocks = [b for b in chunks[0].message.blocks if isinstance(b, ToolCallBlock)]
    assert first_blocks[0].tool_kwargs == '{"ci'
    assert first_blocks[0].tool_call_id == "c1"
    final_blocks = [b for b in chunks[-1].message.blocks if isinstance(b, ToolCallBlock)]
    assert final_blocks[0].tool_kwargs == {"city": "Paris"}
    assert chunks[-1].message.additional_kwargs["tool_calls"][0]["id"] == "c1"
    assert chunks[-1].raw is not None
    assert chunks[-1].raw["finish_reason"] == "tool_calls"


def test_usage_event_alone_yields_no_chunk() -> None:
    conv = ChatStreamConverter()
    assert conv.feed(UsageEvent(usage=USAGE)) is None


def test_cut_stream_raises_incomplete() -> None:
    conv = ChatStreamConverter()
    assert conv.feed(TextDelta(text="partial")) is not None
    with pytest.raises(IncompleteStreamError) as info:
        conv.finish()
    assert info.value.partial_text == "partial"


def test_completion_stream() -> None:
    events = result_to_events(ChatResult(response="a b", usage=USAGE))
    conv = CompletionStreamConverter()
    chunks = [c for e in events if (c := conv.feed(e)) is not None]
    assert [(c.text, c.delta) for c in chunks] == [("a ", "a "), ("a b", "b"), ("a b", "")]
    assert chunks[-1].additional_kwargs["completion_tokens"] == 7
    assert conv.finish().response == "a b"


def test_completion_stream_cut_short() -> None:
    conv = CompletionStreamConverter()
    conv.feed(TextDelta(text="x"))
    with pytest.raises(IncompleteStreamError):
        conv.finish()


def test_partial_message_always_has_a_text_block() -> None:
    conv = ChatStreamConverter()
    chunk = conv.feed(ToolCallDelta(index=0, id="c", name="f", arguments="{"))
    assert chunk is not None
    assert isinstance(chunk.message.blocks[0], TextBlock)
    assert chunk.message.content == ""
