"""Answer envelopes and stream payloads: server-side encoding, client-side decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cf_llama2.backends.remote.sse import iter_sse
from cf_llama2.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    ModelNotFoundError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    WorkersAIErrorDetail,
)
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    InvalidToolCall,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from cf_llama2.schema.reducer import reduce_events
from cf_llama2.wire import (
    PendingPayload,
    SSEEncoder,
    WireStreamDecoder,
    envelope_result,
    envelope_to_events,
    error_to_envelope,
    event_to_sse_payload,
    result_to_envelope,
)

from .conftest import WEATHER_TOOL

USAGE = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)


def _ask(**kwargs: Any) -> ChatRequest:
    kwargs.setdefault("messages", [{"role": "user", "content": "q"}])
    return ChatRequest(**kwargs)


def _decode(request: ChatRequest, payloads: list[Any]) -> list[StreamEvent]:
    decoder = WireStreamDecoder(request, model="m")
    events: list[StreamEvent] = []
    for payload in payloads:
        events += decoder.feed(payload)
    return events + decoder.finish()


# -- envelopes ---------------------------------------------------------------------------------


def test_result_envelope() -> None:
    result = ChatResult(
        response="Hi",
        tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})],
        invalid_tool_calls=[
            InvalidToolCall(id="c2", name="get_weather", arguments='{"city": ', error="cut")
        ],
        usage=USAGE,
        finish_reason="length",
    )
    assert result_to_envelope(result) == {
        "result": {
            "response": "Hi",
            "tool_calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_weather", "arguments": '{"city": '},
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            "finish_reason": "length",
        },
        "success": True,
        "errors": [],
        "messages": [],
    }


def test_result_envelope_round_trips_through_the_client_decoder() -> None:
    request = _ask(tools=[WEATHER_TOOL], max_tokens=4)
    result = ChatResult(
        response="Hi",
        tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})],
        invalid_tool_calls=[
            InvalidToolCall(id="c2", name="get_weather", arguments='{"city": ', error="cut")
        ],
        usage=USAGE,
        finish_reason="tool_calls",
    )
    body = json.loads(json.dumps(result_to_envelope(result)))
    back = reduce_events(envelope_to_events(200, body, request, model="m"))
    assert back.response == "Hi"
    assert [(c.name, c.arguments) for c in back.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert [c.arguments for c in back.invalid_tool_calls] == ['{"city": ']
    assert back.usage == USAGE
    assert back.finish_reason == "tool_calls"
    assert back.model == "m"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (AuthenticationError("bad token"), 401, 10000),
        (ModelNotFoundError("nope"), 400, 5007),
        (RateLimitError("busy"), 429, 3040),
        (RequestValidationError("temperature must be in 0..5; got 9"), 400, 5006),
        (ServerError("boom"), 500, 3043),
        (
            BadRequestError(
                "x", status_code=400, errors=[WorkersAIErrorDetail(code=5004, message="bad data")]
            ),
            400,
            5004,
        ),
    ],
)
def test_error_envelope(error: Exception, status: int, code: int) -> None:
    got_status, envelope = error_to_envelope(error)
    assert got_status == status
    assert envelope["success"] is False
    assert envelope["result"] is None
    assert envelope["errors"][0]["code"] == code
    assert envelope["errors"][0]["message"]


def test_error_envelope_hides_foreign_exception_text() -> None:
    status, envelope = error_to_envelope(KeyError("internal path /secret"))
    assert status == 500
    assert envelope["errors"] == [{"code": 3043, "message": "internal error"}]


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (
            {"result": None, "success": False, "errors": [{"code": 10000, "message": "x"}]},
            AuthenticationError,
        ),
        ({"result": None, "success": True}, BadResponseError),
        ({"success": False, "errors": []}, BadResponseError),
        ("text", BadResponseError),
        ({"result": [1]}, BadResponseError),
    ],
)
def test_envelope_result_failures(body: Any, cls: type) -> None:
    with pytest.raises(cls):
        envelope_result(200, body)


def test_envelope_result_accepts_a_string_result() -> None:
    assert envelope_result(200, {"result": "hi", "success": True}) == {"response": "hi"}


# -- client-side decoding ---------------------------------------------------------------------


def test_decoder_ignores_padding_and_emits_usage_before_end() -> None:
    events = _decode(
        _ask(),
        [
            {"response": "Hel", "p": "xxxx"},
            {"response": "lo", "p": "x"},
            {"response": "", "usage": USAGE.model_dump()},
        ],
    )
    assert events == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        UsageEvent(usage=USAGE),
        EndEvent(finish_reason="stop", model="m"),
    ]


@pytest.mark.parametrize(
    ("payloads", "max_tokens", "expected"),
    [
        ([{"response": "x", "usage": {"completion_tokens": 4}}], 4, "length"),
        ([{"response": "x", "usage": {"completion_tokens": 3}}], 4, "stop"),
        ([{"response": "x", "finish_reason": "length"}], 100, "length"),
        ([{"response": "x", "finish_reason": "tool_calls"}], 100, "stop"),
        ([{"response": "x"}], 100, "stop"),
    ],
)
def test_finish_reason_derivation(payloads: list[Any], max_tokens: int, expected: str) -> None:
    events = _decode(_ask(max_tokens=max_tokens), payloads)
    assert events[-1] == EndEvent(finish_reason=expected, model="m")  # type: ignore[arg-type]


def test_a_text_call_cut_by_max_tokens_is_length_with_a_marker() -> None:
    request = _ask(tools=[WEATHER_TOOL], max_tokens=5)
    events = _decode(
        request,
        [
            {"response": '{"name": "get_weather", "arguments": {"ci'},
            {"response": "", "usage": {"completion_tokens": 5}},
        ],
    )
    result = reduce_events(events)
    assert result.finish_reason == "length"
    assert result.tool_calls == []
    assert "max_tokens" in result.invalid_tool_calls[0].error
    assert result.response == ""  # partial JSON never leaks into the text


def test_text_before_a_streamed_call_streams_as_text() -> None:
    request = _ask(tools=[WEATHER_TOOL])
    decoder = WireStreamDecoder(request)
    first = decoder.feed({"response": "Let me check. "})
    assert "".join(e.text for e in first if isinstance(e, TextDelta)).startswith("Let me check.")
    decoder.feed({"response": '{"name": "get_weather", '})
    decoder.feed({"response": '"arguments": {"city": "Oslo"}}'})
    result = reduce_events([*first, *decoder.finish()])
    assert result.finish_reason == "tool_calls"


def test_structured_and_text_calls_get_distinct_indices() -> None:
    request = _ask(tools=[WEATHER_TOOL])
    events = _decode(
        request,
        [
            {"response": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "A"}}]},
            {"response": '{"name": "get_weather", "arguments": {"city": "B"}}'},
        ],
    )
    result = reduce_events(events)
    assert [c.arguments["city"] for c in result.tool_calls] == ["A", "B"]
    assert len({c.id for c in result.tool_calls}) == 2


def test_without_tools_json_text_stays_text() -> None:
    text = '{"name": "get_weather", "arguments": {}}'
    result = reduce_events(_decode(_ask(), [{"response": text}]))
    assert result.response == text
    assert result.tool_calls == []


def test_stop_sequences_cut_text_split_across_payloads() -> None:
    decoder = WireStreamDecoder(_ask(stop=["\nUser:"]))
    events = decoder.feed({"response": "Answer.\nUs"})
    assert not decoder.stopped
    events += decoder.feed({"response": "er: more"})
    assert decoder.stopped
    assert decoder.feed({"response": "ignored"}) == []
    result = reduce_events([*events, *decoder.finish()])
    assert result.response == "Answer."
    assert decoder.text == "Answer."


def test_held_back_stop_prefix_is_released_at_the_end() -> None:
    result = reduce_events(_decode(_ask(stop=["###"]), [{"response": "a#"}, {"response": "#"}]))
    assert result.response == "a##"


def test_decoder_rejects_bad_payloads() -> None:
    decoder = WireStreamDecoder(_ask())
    with pytest.raises(BadResponseError):
        decoder.feed([1])
    with pytest.raises(BadResponseError, match="string"):
        decoder.feed({"response": 5})
    with pytest.raises(RateLimitError):
        decoder.feed({"result": None, "success": False, "errors": [{"code": 3040, "message": ""}]})


# -- server-side encoding ---------------------------------------------------------------------


def test_tool_call_deltas_are_buffered_until_complete() -> None:
    pending = PendingPayload()
    assert event_to_sse_payload(ToolCallDelta(index=0, id="a", name="get_weather"), pending) is None
    assert event_to_sse_payload(ToolCallDelta(index=0, arguments='{"city":'), pending) is None
    assert event_to_sse_payload(ToolCallDelta(index=0, arguments='"Paris"}'), pending) is None
    second = event_to_sse_payload(ToolCallDelta(index=1, name="get_time"), pending)
    assert second == {
        "response": "",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
    }
    assert event_to_sse_payload(UsageEvent(usage=USAGE), pending) == {
        "response": "",
        "tool_calls": [{"name": "get_time", "arguments": {}}],
    }
    assert event_to_sse_payload(EndEvent(finish_reason="tool_calls"), pending) == {
        "response": "",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        "finish_reason": "tool_calls",
    }
    assert event_to_sse_payload(TextDelta(text=""), pending) is None


def test_encoder_frames_and_ends_with_done() -> None:
    encoder = SSEEncoder()
    chunks = list(
        encoder.iter_encode(
            [TextDelta(text="Hi"), UsageEvent(usage=USAGE), EndEvent(finish_reason="stop")]
        )
    )
    data = b"".join(chunks)
    assert data.startswith(b'data: {"response":"Hi"}\n\n')
    assert data.endswith(b"data: [DONE]\n\n")
    assert encoder.done
    assert [e.data for e in iter_sse([data])][-1] == "[DONE]"


EVENT_STREAMS: list[list[StreamEvent]] = [
    [TextDelta(text="Hello"), TextDelta(text=" there"), UsageEvent(usage=USAGE), EndEvent()],
    [
        TextDelta(text="Checking. "),
        ToolCallDelta(index=0, id="x", name="get_weather", arguments='{"city"'),
        ToolCallDelta(index=0, arguments=': "Paris"}'),
        ToolCallDelta(index=1, id="y", name="get_weather", arguments='{"city": "Rome"}'),
        UsageEvent(usage=USAGE),
        EndEvent(finish_reason="tool_calls"),
    ],
    [
        ToolCallDelta(index=0, id="x", name="get_weather", arguments='{"city": "Pa'),
        UsageEvent(usage=Usage(prompt_tokens=1, completion_tokens=256, total_tokens=257)),
        EndEvent(finish_reason="length"),
    ],
]


@pytest.mark.parametrize("events", EVENT_STREAMS, ids=["text", "calls", "cut-call"])
def test_encode_then_decode_gives_the_same_result(events: list[StreamEvent]) -> None:
    request = _ask(tools=[WEATHER_TOOL])
    data = b"".join(SSEEncoder().iter_encode(events))
    decoder = WireStreamDecoder(request, model="m")
    decoded: list[StreamEvent] = []
    saw_done = False
    for sse in iter_sse([data[i : i + 7] for i in range(0, len(data), 7)]):
        if sse.data == "[DONE]":
            saw_done = True
            break
        decoded += decoder.feed(json.loads(sse.data))
    decoded += decoder.finish()
    assert saw_done
    original = reduce_events(events, model="m")
    back = reduce_events(decoded)
    ignore = {"tool_calls": {"__all__": {"id"}}, "invalid_tool_calls": {"__all__": {"id", "error"}}}
    assert back.model_dump(exclude=ignore) == original.model_dump(exclude=ignore)


def test_encode_error_mid_stream() -> None:
    encoder = SSEEncoder()
    chunk = encoder.encode_error(ServerError("generation failed"))
    payload = json.loads(next(iter_sse([chunk])).data)
    assert payload["success"] is False
    assert payload["errors"][0]["code"] == 3043
    with pytest.raises(ServerError):
        WireStreamDecoder(_ask()).feed(payload)
