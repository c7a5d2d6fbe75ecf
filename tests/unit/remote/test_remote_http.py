"""RemoteBackend over real HTTP against the loopback Workers AI fake, sync and async."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.backends.remote.retry import RetryPolicy
from cf_llama2.errors import (
    DEPRECATION_NOTE,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    IncompleteStreamError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
)
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    PromptRequest,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from cf_llama2.schema.reducer import reduce_events
from tests.support.workers_ai_fake import (
    Gate,
    Reply,
    Sleep,
    StreamReply,
    WorkersAIFake,
    error_envelope,
    ok_envelope,
)

from .conftest import WEATHER_TOOL

TOKEN = "tok-SECRET-1234567890"
MODEL = "@cf/meta/llama-2-7b-chat-int8"
FAST = RetryPolicy(initial_delay=0.001, max_delay=0.005, jitter=0.5)
USAGE = {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}


@pytest.fixture
def fake() -> Iterator[WorkersAIFake]:
    with WorkersAIFake() as server:
        yield server


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _backend(fake: WorkersAIFake, **kwargs: Any) -> RemoteBackend:
    kwargs.setdefault("retry_policy", FAST)
    return RemoteBackend("acc", TOKEN, base_url=fake.base_url, **kwargs)


def _ask(**kwargs: Any) -> ChatRequest:
    kwargs.setdefault("messages", [{"role": "user", "content": "Hello?"}])
    return ChatRequest(**kwargs)


async def run(backend: RemoteBackend, request: Any, mode: str) -> ChatResult:
    if mode == "sync":
        with backend:
            return backend.run(request)
    async with backend:
        return await backend.arun(request)


async def stream(backend: RemoteBackend, request: Any, mode: str) -> list[StreamEvent]:
    if mode == "sync":
        with backend:
            return list(backend.stream(request))
    async with backend:
        return [event async for event in backend.astream(request)]


# -- answers ------------------------------------------------------------------------------------


async def test_text_answer_and_the_exact_request(
    fake: WorkersAIFake, mode: str, input_schema: dict[str, Any]
) -> None:
    fake.script(Reply(body=ok_envelope("Hi there!", usage=USAGE)))
    result = await run(_backend(fake), _ask(temperature=0, seed=3), mode)
    assert result.response == "Hi there!"
    assert result.usage is not None
    assert result.usage.total_tokens == 33
    assert result.finish_reason == "stop"
    assert result.model == MODEL
    sent = fake.requests[0]
    assert sent.path == f"/client/v4/accounts/acc/ai/run/{MODEL}"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert "cf-llama2-options" not in sent.headers
    assert sent.json == {
        "messages": [{"role": "user", "content": "Hello?"}],
        "stream": False,
        "max_tokens": 256,
        "temperature": 0.0,
        "seed": 3,
    }
    jsonschema.validate(sent.json, input_schema)


@pytest.mark.parametrize("form", ["function", "flat"])
async def test_tool_calls_get_ids_and_the_body_matches_the_schema(
    fake: WorkersAIFake, mode: str, form: str, input_schema: dict[str, Any]
) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": '{"city": "Rome", "unit": "c"}'},
    ]
    fake.script(Reply(body=ok_envelope(None, tool_calls=calls)))
    backend = _backend(fake, tool_format=form)
    result = await run(backend, _ask(tools=[WEATHER_TOOL]), mode)
    assert result.finish_reason == "tool_calls"
    assert [c.arguments for c in result.tool_calls] == [
        {"city": "Paris"},
        {"city": "Rome", "unit": "c"},
    ]
    ids = [c.id for c in result.tool_calls]
    assert all(ids)
    assert len(set(ids)) == 2
    body = fake.requests[0].json
    jsonschema.validate(body, input_schema)
    tool = body["tools"][0]
    assert (tool["function"]["name"] if form == "function" else tool["name"]) == "get_weather"


async def test_a_call_written_as_text_is_parsed(fake: WorkersAIFake, mode: str) -> None:
    text = 'Sure. {"name": "get_weather", "arguments": {"city": "Oslo"}}'
    fake.script(Reply(body=ok_envelope(text)))
    result = await run(_backend(fake), _ask(tools=[WEATHER_TOOL]), mode)
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert result.response.strip() == "Sure."


async def test_unknown_tool_names_become_invalid_calls(fake: WorkersAIFake, mode: str) -> None:
    calls = [{"name": "launch_rockets", "arguments": {}}]
    fake.script(Reply(body=ok_envelope("", tool_calls=calls)))
    result = await run(_backend(fake), _ask(tools=[WEATHER_TOOL]), mode)
    assert result.tool_calls == []
    assert [c.name for c in result.invalid_tool_calls] == ["launch_rockets"]
    assert "launch_rockets" in result.invalid_tool_calls[0].error
    assert result.finish_reason == "stop"


async def test_hitting_max_tokens_gives_length(fake: WorkersAIFake, mode: str) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    fake.script(Reply(body=ok_envelope("one two three four", usage=usage)))
    result = await run(_backend(fake), _ask(max_tokens=4), mode)
    assert result.finish_reason == "length"


async def test_prompt_shape_and_a_bare_string_result(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body={"result": "plain", "success": True, "errors": [], "messages": []}))
    result = await run(_backend(fake), PromptRequest(prompt="Say plain"), mode)
    assert result.response == "plain"
    assert fake.requests[0].json["prompt"] == "Say plain"


async def test_options_header_and_client_side_stop(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body=ok_envelope("Hello###and more")))
    result = await run(_backend(fake), _ask(stop=["###"]), mode)
    assert result.response == "Hello"
    assert result.finish_reason == "stop"
    assert fake.requests[0].headers["cf-llama2-options"] == '{"stop":["###"]}'


async def test_gateway_and_extra_headers(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body=ok_envelope("ok")))
    backend = RemoteBackend(
        "acc",
        TOKEN,
        base_url=f"http://127.0.0.1:{fake.port}/v1",
        gateway="my-gw",
        headers={"cf-aig-skip-cache": "true"},
    )
    assert (await run(backend, _ask(), mode)).response == "ok"
    assert fake.requests[0].path == f"/v1/acc/my-gw/workers-ai/{MODEL}"
    assert fake.requests[0].headers["cf-aig-skip-cache"] == "true"


def test_async_calls_work_across_event_loops(fake: WorkersAIFake) -> None:
    # asyncio.run closes its loop: a pool kept from the first run must not break the second.
    fake.script(
        Reply(body=ok_envelope("one")),
        StreamReply([{"response": "two"}]),
        Reply(body=ok_envelope("three")),
    )
    backend = _backend(fake)

    async def collect() -> str:
        return "".join([e.text async for e in backend.astream(_ask()) if isinstance(e, TextDelta)])

    assert asyncio.run(backend.arun(_ask())).response == "one"
    assert asyncio.run(collect()) == "two"
    assert asyncio.run(backend.arun(_ask())).response == "three"
    asyncio.run(backend.aclose())


# -- streams -----------------------------------------------------------------------------------


async def test_stream_ignores_padding_and_reads_the_late_usage(
    fake: WorkersAIFake, mode: str
) -> None:
    fake.script(
        StreamReply(
            [{"response": "Hello"}, {"response": " world"}, {"response": "", "usage": USAGE}]
        )
    )
    events = await stream(_backend(fake), _ask(), mode)
    assert events == [
        TextDelta(text="Hello"),
        TextDelta(text=" world"),
        UsageEvent(usage=USAGE),  # type: ignore[arg-type]
        EndEvent(finish_reason="stop", model=MODEL),
    ]
    sent = fake.requests[0]
    assert sent.json["stream"] is True
    assert sent.headers["accept"] == "text/event-stream"


async def test_stream_tool_call_events(fake: WorkersAIFake, mode: str) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    fake.script(
        StreamReply([{"response": "", "tool_calls": [call]}, {"response": "", "usage": USAGE}])
    )
    events = await stream(_backend(fake), _ask(tools=[WEATHER_TOOL]), mode)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) == 1
    assert deltas[0].id
    assert deltas[0].name == "get_weather"
    result = reduce_events(events)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls[0].arguments == {"city": "Paris"}


async def test_streamed_text_call_equals_the_non_streamed_one(
    fake: WorkersAIFake, mode: str
) -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Lima"}}'
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    fake.script(
        StreamReply([{"response": p} for p in pieces] + [{"response": "", "usage": USAGE}]),
        Reply(body=ok_envelope(text, usage=USAGE)),
    )
    streamed = reduce_events(await stream(_backend(fake), _ask(tools=[WEATHER_TOOL]), mode))
    whole = await run(_backend(fake), _ask(tools=[WEATHER_TOOL]), mode)
    strip = {"tool_calls": {"__all__": {"id"}}, "model": True}
    assert streamed.model_dump(exclude=strip) == whole.model_dump(exclude=strip)
    assert streamed.tool_calls[0].arguments == {"city": "Lima"}
    assert streamed.response == ""


def test_stream_delivers_the_first_event_before_the_server_finishes(
    fake: WorkersAIFake,
) -> None:
    gate = Gate()
    fake.script(StreamReply([{"response": "first"}, gate, {"response": " second"}]))
    with _backend(fake) as backend:
        events = backend.stream(_ask())
        assert next(events) == TextDelta(text="first")
        assert not gate.event.is_set()  # the server is still holding the rest
        gate.open()
        rest = list(events)
    assert gate.opened_in_time is True
    assert rest[0] == TextDelta(text=" second")
    assert isinstance(rest[-1], EndEvent)


async def test_async_stream_delivers_the_first_event_before_the_server_finishes(
    fake: WorkersAIFake,
) -> None:
    gate = Gate()
    fake.script(StreamReply([{"response": "first"}, gate, {"response": " second"}]))
    async with _backend(fake) as backend:
        events = backend.astream(_ask())
        assert await anext(events) == TextDelta(text="first")
        assert not gate.event.is_set()
        gate.open()
        rest = [e async for e in events]
    assert gate.opened_in_time is True
    assert rest[0] == TextDelta(text=" second")


@pytest.mark.parametrize("cut", [False, True], ids=["closed", "broken"])
async def test_stream_without_done_is_incomplete(fake: WorkersAIFake, mode: str, cut: bool) -> None:
    fake.script(StreamReply([{"response": "Par"}, {"response": "tial"}], done=False, cut=cut))
    with pytest.raises(IncompleteStreamError) as info:
        await stream(_backend(fake), _ask(), mode)
    assert info.value.partial_text == "Partial"
    assert "[DONE]" in str(info.value)
    assert len(fake.requests) == 1  # events were delivered: never retried


async def test_stream_stops_reading_at_a_stop_sequence(fake: WorkersAIFake, mode: str) -> None:
    # No [DONE] after the stop: reading on would end in IncompleteStreamError.
    fake.script(
        StreamReply(
            [{"response": "Hello#"}, {"response": "## rest"}, Sleep(30), {"response": "x"}],
            done=False,
        )
    )
    events = await stream(_backend(fake), _ask(stop=["###"]), mode)
    result = reduce_events(events)
    assert result.response == "Hello"
    assert result.finish_reason == "stop"


async def test_stream_retries_before_the_first_event(fake: WorkersAIFake, mode: str) -> None:
    fake.script(
        Reply(503, error_envelope((3043, "busy"))),
        StreamReply([], done=False, cut=True),  # broken before any event: a connection error
        StreamReply([{"response": "ok"}]),
    )
    events = await stream(_backend(fake), _ask(), mode)
    assert reduce_events(events).response == "ok"
    assert len(fake.requests) == 3


async def test_stream_error_event_raises_the_typed_error(fake: WorkersAIFake, mode: str) -> None:
    fake.script(StreamReply([{"response": "a"}, error_envelope((3040, "capacity"))]))
    with pytest.raises(RateLimitError) as info:
        await stream(_backend(fake), _ask(), mode)
    assert info.value.codes == [3040]


@pytest.mark.parametrize(
    "frame",
    [
        'event: error\ndata: {"errors": [{"code": 3043, "message": "worker died"}]}\n\n',
        "event: error\ndata: worker died\n\n",
    ],
    ids=["json", "text"],
)
async def test_stream_error_event_type(fake: WorkersAIFake, mode: str, frame: str) -> None:
    fake.script(StreamReply([{"response": "a"}, frame]))
    with pytest.raises(APIError, match="worker died"):
        await stream(_backend(fake), _ask(), mode)


async def test_stream_answered_with_json_is_accepted(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body=ok_envelope("not streamed")))
    events = await stream(_backend(fake), _ask(), mode)
    assert reduce_events(events).response == "not streamed"


async def test_stream_event_that_is_not_json(fake: WorkersAIFake, mode: str) -> None:
    fake.script(StreamReply(["data: {oops\n\n"]))
    with pytest.raises(BadResponseError, match="not JSON"):
        await stream(_backend(fake, max_retries=0), _ask(), mode)


# -- errors ------------------------------------------------------------------------------------

# The whole table (16 status/code rows) is tested in pure form in tests/unit/core/test_errors.py;
# these rows check that the HTTP paths (run and stream, sync and async) reach it.
ERROR_ROWS = [
    (400, 5006, BadRequestError),
    (400, 5007, ModelNotFoundError),
    (401, 10000, AuthenticationError),
    (429, 3040, RateLimitError),
    (502, 1000, ServerError),
]


@pytest.mark.parametrize(("status", "code", "cls"), ERROR_ROWS)
@pytest.mark.parametrize("streaming", [False, True], ids=["run", "stream"])
async def test_every_error_row(
    fake: WorkersAIFake,
    mode: str,
    streaming: bool,
    status: int,
    code: int,
    cls: type[APIError],
) -> None:
    fake.script(Reply(status, error_envelope((code, f"failure {code}"))))
    backend = _backend(fake, max_retries=0)
    call = stream(backend, _ask(), mode) if streaming else run(backend, _ask(), mode)
    with pytest.raises(cls) as info:
        await call
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.codes == [code]
    assert f"failure {code}" in str(error)
    if cls is ModelNotFoundError:
        assert "2026-05-30" in str(error)
        assert DEPRECATION_NOTE in str(error)


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        ({"result": None, "success": False, "errors": [], "messages": []}, BadResponseError),
        (error_envelope((5007, "No such model")), ModelNotFoundError),
        ({"result": None, "success": True, "errors": [], "messages": []}, BadResponseError),
        (b"<html>oops</html>", BadResponseError),
        ([1, 2, 3], BadResponseError),
        ({"result": 5, "success": True}, BadResponseError),
    ],
    ids=["success-false", "success-false-5007", "result-null", "not-json", "list", "number"],
)
async def test_bad_200_answers(fake: WorkersAIFake, mode: str, body: Any, cls: type) -> None:
    fake.script(Reply(200, body))
    with pytest.raises(cls) as info:
        await run(_backend(fake), _ask(), mode)
    assert type(info.value) is cls
    assert len(fake.requests) == 1  # not retried


async def test_non_json_error_page(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(502, b"<html>Bad gateway</html>", content_type="text/html"))
    with pytest.raises(ServerError) as info:
        await run(_backend(fake, max_retries=0), _ask(), mode)
    assert "Bad gateway" in str(info.value)


async def test_client_timeout(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body=ok_envelope("late"), delay=5))
    with pytest.raises(APITimeoutError) as info:
        await run(_backend(fake, timeout=0.2, max_retries=0), _ask(), mode)
    assert "timeout=" in str(info.value)


async def test_timeout_is_retried(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(body=ok_envelope("late"), delay=5), Reply(body=ok_envelope("fast")))
    result = await run(_backend(fake, timeout=0.2, max_retries=1), _ask(), mode)
    assert result.response == "fast"


async def test_connection_refused(mode: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = RemoteBackend(
        "acc", TOKEN, base_url=f"http://127.0.0.1:{port}/client/v4", retry_policy=FAST
    )
    with pytest.raises(APIConnectionError) as info:
        await run(backend, _ask(), mode)
    assert "base_url" in str(info.value)


# -- retries -----------------------------------------------------------------------------------


async def test_rate_limit_with_retry_after_then_success(
    fake: WorkersAIFake, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(
        Reply(429, error_envelope((3040, "capacity")), headers={"Retry-After": "0"}),
        Reply(body=ok_envelope("after the wait")),
    )
    with caplog.at_level("DEBUG"):
        result = await run(_backend(fake), _ask(), mode)
    assert result.response == "after the wait"
    assert len(fake.requests) == 2
    retries = [r for r in caplog.records if r.name == "cf_llama2.remote"]
    assert len(retries) == 1
    assert "RateLimitError" in retries[0].getMessage()
    assert "retry 1 of 2 in 0.00s" in retries[0].getMessage()
    assert TOKEN not in caplog.text


async def test_retry_after_on_a_server_error_is_honoured(
    fake: WorkersAIFake, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(
        Reply(503, error_envelope((3043, "busy")), headers={"Retry-After": "0"}),
        Reply(body=ok_envelope("back")),
    )
    # The backoff alone would wait 50 s: the answer comes only if Retry-After is used.
    slow_backoff = RetryPolicy(initial_delay=50.0, max_delay=50.0)
    with caplog.at_level("WARNING", logger="cf_llama2.remote"):
        result = await run(_backend(fake, retry_policy=slow_backoff), _ask(), mode)
    assert result.response == "back"
    assert "ServerError" in caplog.text
    # Retry-After: 0, plus the jitter (at most jitter * min(initial_delay, 1) = 0.25 s).
    assert re.search(r"in 0\.[0-2]\ds", caplog.text)


async def test_rate_limit_retry_after_is_kept_on_the_error(fake: WorkersAIFake, mode: str) -> None:
    fake.script(Reply(429, error_envelope((3036, "daily")), headers={"Retry-After": "120"}))
    with pytest.raises(RateLimitError) as info:
        await run(_backend(fake), _ask(), mode)
    assert info.value.retry_after == 120.0
    assert len(fake.requests) == 1  # longer than the policy's max_retry_after: not waited for


async def test_server_errors_then_success(fake: WorkersAIFake, mode: str) -> None:
    fake.script(
        Reply(500, error_envelope((3043, "internal"))),
        Reply(503, b"unavailable", content_type="text/plain"),
        Reply(body=ok_envelope("third time")),
    )
    assert (await run(_backend(fake), _ask(), mode)).response == "third time"
    assert len(fake.requests) == 3


async def test_retries_are_limited(fake: WorkersAIFake, mode: str) -> None:
    fake.script(*[Reply(500, error_envelope((3043, "internal")))] * 4)
    with pytest.raises(ServerError):
        await run(_backend(fake), _ask(), mode)
    assert len(fake.requests) == 3  # max_retries=2 by default


async def test_other_4xx_are_never_retried(fake: WorkersAIFake, mode: str) -> None:
    fake.script(
        Reply(400, error_envelope((5006, "oneOf at '/' not met"))), Reply(body=ok_envelope())
    )
    with pytest.raises(BadRequestError):
        await run(_backend(fake), _ask(), mode)
    assert len(fake.requests) == 1
