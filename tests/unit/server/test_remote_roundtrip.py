"""RemoteBackend -> server -> a scripted backend gives what the scripted backend gives directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.errors import (
    APIError,
    AuthenticationError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
)
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from cf_llama2.schema.reducer import reduce_events
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import Script, ScriptedBackend, tool_call

from .conftest import TOKEN

WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}

ANSWERS: dict[str, Script] = {
    "text": "The sea is wide and deep.",
    "tool-call": tool_call("get_weather", city="Paris"),
    "text-then-calls": [
        TextDelta(text="Checking both. "),
        ToolCallDelta(index=0, id="a", name="get_weather", arguments='{"city": '),
        ToolCallDelta(index=0, arguments='"Oslo"}'),
        ToolCallDelta(index=1, id="b", name="get_weather", arguments='{"city": "Rome"}'),
        UsageEvent(usage=Usage(prompt_tokens=7, completion_tokens=20, total_tokens=27)),
        EndEvent(finish_reason="tool_calls"),
    ],
    "length": ChatResult(
        response="one two three",
        usage=Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5),
        finish_reason="length",
    ),
}


def comparable(result: ChatResult) -> dict[str, Any]:
    return {
        "response": result.response,
        "tool_calls": [(c.name, c.arguments) for c in result.tool_calls],
        "usage": result.usage,
        "finish_reason": result.finish_reason,
    }


def _request(stream: bool = False) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}], tools=[WEATHER], stream=stream)


@pytest.fixture
def scripted() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def server(scripted: ScriptedBackend) -> Iterator[ServerHandle]:
    with serve_in_thread(scripted, api_token=TOKEN) as handle:
        yield handle


@pytest.fixture
def remote(server: ServerHandle) -> Iterator[RemoteBackend]:
    backend = RemoteBackend("acct", TOKEN, base_url=server.base_url, max_retries=0)
    yield backend
    backend.close()


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_run_and_stream_match_the_backend(
    answer: str, scripted: ScriptedBackend, remote: RemoteBackend
) -> None:
    scripted.add(*[ANSWERS[answer]] * 4)
    direct = scripted.run(_request())
    served = remote.run(_request())
    assert comparable(served) == comparable(direct)
    direct_events = list(scripted.stream(_request(stream=True)))
    served_events = list(remote.stream(_request(stream=True)))
    assert comparable(reduce_events(served_events)) == comparable(reduce_events(direct_events))
    assert _kinds(served_events) == _kinds(direct_events)


async def test_async_paths_match(scripted: ScriptedBackend, server: ServerHandle) -> None:
    scripted.add(*[ANSWERS["text-then-calls"]] * 2)
    remote = RemoteBackend("acct", TOKEN, base_url=server.base_url, max_retries=0)
    try:
        served = await remote.arun(_request())
        events = [e async for e in remote.astream(_request(stream=True))]
    finally:
        await remote.aclose()
    assert comparable(served) == comparable(reduce_events(events))
    assert [(c.name, c.arguments) for c in served.tool_calls] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Rome"}),
    ]


def _kinds(events: list[StreamEvent]) -> list[str]:
    """The order of event kinds, with runs of one kind (and one call's deltas) collapsed."""
    out: list[str] = []
    for event in events:
        kind = f"tool_call:{event.index}" if isinstance(event, ToolCallDelta) else event.type
        if not out or out[-1] != kind:
            out.append(kind)
    return out


@pytest.mark.parametrize(
    "error",
    [
        RequestTooLargeError("prompt is longer than the context window"),
        ModelNotFoundError("no such model"),
        AuthenticationError("who are you"),
        PermissionDeniedError("licence not accepted"),
        RateLimitError("busy"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_errors_arrive_as_the_same_class(
    error: APIError, stream: bool, scripted: ScriptedBackend, remote: RemoteBackend
) -> None:
    scripted.add(error)

    def call() -> object:
        return list(remote.stream(_request(stream=True))) if stream else remote.run(_request())

    with pytest.raises(type(error)) as info:
        call()
    assert error.message in str(info.value)


def test_mid_stream_error_arrives_as_the_same_class(
    scripted: ScriptedBackend, remote: RemoteBackend
) -> None:
    class Failing(ScriptedBackend):
        async def astream(self, request):  # type: ignore[no-untyped-def, override]
            yield TextDelta(text="partial ")
            raise RequestTooLargeError("ran out of context")

    with serve_in_thread(Failing(), api_token=TOKEN) as server:
        failing = RemoteBackend("acct", TOKEN, base_url=server.base_url, max_retries=0)
        received: list[StreamEvent] = []

        def consume() -> None:
            plain = ChatRequest(messages=[{"role": "user", "content": "hi"}], stream=True)
            received.extend(failing.stream(plain))

        with pytest.raises(RequestTooLargeError, match="ran out of context"):
            consume()
        failing.close()
    assert [e.text for e in received if isinstance(e, TextDelta)] == ["partial "]
