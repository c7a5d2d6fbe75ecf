"""The scripted backend that users put in their own tests."""

from __future__ import annotations

import pytest

from cf_llama2 import (
    ChatRequest,
    ChatResult,
    ConfigurationError,
    EndEvent,
    InvalidToolCall,
    RateLimitError,
    TextDelta,
    reduce_events,
)
from cf_llama2.backends import Backend
from cf_llama2.testing import ScriptedBackend, tool_call

REQ = ChatRequest(messages=[{"role": "user", "content": "hi"}])


def test_is_a_backend_and_records_requests() -> None:
    backend = ScriptedBackend(["Hello world"])
    assert isinstance(backend, Backend)
    assert backend.run(REQ).response == "Hello world"
    assert backend.requests == [REQ]


def test_stream_equals_run() -> None:
    script = ["Hello big world", tool_call("f", "c1", x=1)]
    a = ScriptedBackend(script)
    b = ScriptedBackend(script)
    for _ in script:
        assert reduce_events(a.stream(REQ), model="scripted") == b.run(REQ)


def test_tool_call_answers() -> None:
    result = ScriptedBackend([tool_call("get_weather", city="Paris")]).run(REQ)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].arguments == {"city": "Paris"}
    assert result.tool_calls[0].id.startswith("call_")


def test_errors_and_raw_events() -> None:
    backend = ScriptedBackend([RateLimitError("slow down"), [TextDelta(text="cut")]])
    with pytest.raises(RateLimitError):
        backend.run(REQ)
    events = list(backend.stream(REQ))
    assert events == [TextDelta(text="cut")]
    assert not any(isinstance(e, EndEvent) for e in events)


def test_exhausted_script_says_how_to_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"\.add"):
        ScriptedBackend([]).run(REQ)


def test_repeat_last() -> None:
    backend = ScriptedBackend([ChatResult(response="same")], repeat_last=True)
    assert [backend.run(REQ).response for _ in range(3)] == ["same"] * 3


async def test_async_paths() -> None:
    backend = ScriptedBackend(["one two", "three"])
    assert (await backend.arun(REQ)).response == "one two"
    texts = [e.text async for e in backend.astream(REQ) if isinstance(e, TextDelta)]
    assert "".join(texts) == "three"
    await backend.aclose()
    assert backend.closed


def test_invalid_tool_calls_survive_the_stream() -> None:
    bad = InvalidToolCall(id="c9", name="f", arguments="{oops", error="not valid JSON")
    scripted = ChatResult(invalid_tool_calls=[bad])
    backend = ScriptedBackend([scripted, scripted])
    assert backend.run(REQ).invalid_tool_calls == [bad]
    assert reduce_events(backend.stream(REQ)).invalid_tool_calls == [bad]
