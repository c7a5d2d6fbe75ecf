"""The one stream reducer: events -> ChatResult, invalid and truncated calls kept with reasons."""

from __future__ import annotations

import pytest

from cf_llama2 import (
    EndEvent,
    IncompleteStreamError,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
    reduce_events,
)
from cf_llama2.schema.reducer import areduce_events, finish_tool_call


def test_text_usage_and_finish() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    result = reduce_events(
        [TextDelta(text="Hel"), TextDelta(text="lo"), UsageEvent(usage=usage), EndEvent(model="m")]
    )
    assert result.response == "Hello"
    assert result.usage == usage
    assert result.finish_reason == "stop"
    assert result.model == "m"


def test_tool_call_fragments_join_by_index() -> None:
    events = [
        ToolCallDelta(index=1, id="b", name="g", arguments='{"y"'),
        ToolCallDelta(index=0, id="a", name="f", arguments="{"),
        ToolCallDelta(index=0, arguments='"x": 1}'),
        ToolCallDelta(index=1, arguments=": 2}"),
        EndEvent(finish_reason="tool_calls"),
    ]
    result = reduce_events(events)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {"y": 2}),
    ]
    assert result.invalid_tool_calls == []


def test_empty_arguments_mean_no_arguments() -> None:
    result = reduce_events([ToolCallDelta(index=0, id="a", name="now"), EndEvent()])
    assert result.tool_calls[0].arguments == {}


def test_truncated_call_is_kept_as_invalid_with_the_length_marker() -> None:
    result = reduce_events(
        [
            ToolCallDelta(index=0, id="a", name="f", arguments='{"city": "Par'),
            EndEvent(finish_reason="length"),
        ]
    )
    assert result.finish_reason == "length"
    assert result.tool_calls == []
    (bad,) = result.invalid_tool_calls
    assert bad.name == "f"
    assert bad.arguments == '{"city": "Par'
    assert "max_tokens" in bad.error
    assert "finish_reason='length'" in bad.error


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [(None, "{}", "no name"), ("f", "[1]", "JSON object"), ("f", "{oops", "not valid JSON")],
)
def test_invalid_calls_have_reasons(name: str | None, args: str, match: str) -> None:
    out = finish_tool_call("id1", name, args)
    assert not hasattr(out, "arguments") or isinstance(out.arguments, str)
    assert match in out.error  # type: ignore[union-attr]


def test_missing_end_event_is_an_incomplete_stream() -> None:
    with pytest.raises(IncompleteStreamError) as info:
        reduce_events([TextDelta(text="partial")])
    assert info.value.partial_text == "partial"


async def test_async_reducer_matches() -> None:
    events = [TextDelta(text="a"), EndEvent()]

    async def gen():  # type: ignore[no-untyped-def]
        for e in events:
            yield e

    assert await areduce_events(gen()) == reduce_events(events)
