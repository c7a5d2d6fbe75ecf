"""Parity: RemoteBackend -> this server -> LocalBackend answers exactly like LocalBackend itself.

Every request is greedy or seeded, so both paths must give equal text, tool calls (ids aside),
usage and finish reason; equal streams once text pieces are joined (the wire may cut text
differently, but the order of text, tool calls, usage and end is the same); and errors of equal
class, HTTP status and Workers AI code.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from cf_llama2.backends.local import LocalBackend
from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.errors import APIError, CfLlama2Error, error_from_response, status_and_code_for
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    PromptRequest,
    Request,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from cf_llama2.server import ServerHandle

from .conftest import TOKEN

pytestmark = pytest.mark.slow

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city name"}},
        "required": ["city"],
    },
}
TIME = {
    "name": "get_time",
    "description": "Get the local time in a timezone",
    "parameters": {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "an IANA timezone"}},
        "required": ["timezone"],
    },
}
USER = {"role": "user", "content": "What is the weather in Paris?"}

CASES: dict[str, dict[str, Any]] = {
    "prompt-greedy": {"prompt": "Write one sentence about the sea.", "max_tokens": 20},
    "chat-system-greedy": {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Name three colours."},
        ],
        "max_tokens": 20,
    },
    "chat-seeded-sampling": {
        "messages": [{"role": "user", "content": "Tell me a fun fact."}],
        "temperature": 0.9,
        "top_p": 0.95,
        "top_k": 40,
        "seed": 1234,
        "max_tokens": 20,
    },
    "length-cut": {"messages": [{"role": "user", "content": "Count to twenty."}], "max_tokens": 4},
    "stop-sequence": {
        "messages": [{"role": "user", "content": "List the numbers 1 to 9, comma separated."}],
        "stop": ["5"],
        "max_tokens": 30,
    },
    "tool-named": {"messages": [USER], "tools": [WEATHER, TIME], "tool_choice": "get_weather"},
    "tool-required": {"messages": [USER], "tools": [WEATHER, TIME], "tool_choice": "required"},
    "tool-auto": {"messages": [USER], "tools": [WEATHER], "max_tokens": 40},
    "tool-none": {"messages": [USER], "tools": [WEATHER], "tool_choice": "none", "max_tokens": 12},
    "tool-result-turn": {
        "messages": [
            USER,
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C"},
        ],
        "tools": [WEATHER],
        "max_tokens": 20,
    },
    "response-format": {
        "messages": [{"role": "user", "content": "Give a person's name and age."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
        },
        "max_tokens": 40,
    },
}


def _request(fields: dict[str, Any], *, stream: bool = False) -> Request:
    data = {"temperature": 0, "max_tokens": 32, **fields, "stream": stream}
    return PromptRequest(**data) if "prompt" in data else ChatRequest(**data)


def comparable(result: ChatResult) -> dict[str, Any]:
    """A result without what may differ between the paths (call ids, the model name)."""
    return {
        "response": result.response,
        "tool_calls": [(c.name, c.arguments) for c in result.tool_calls],
        "invalid_tool_calls": [(c.name, c.arguments) for c in result.invalid_tool_calls],
        "usage": result.usage.model_dump() if result.usage else None,
        "finish_reason": result.finish_reason,
    }


def shape(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """Events with consecutive text joined and each tool call's deltas merged, in order."""
    out: list[list[Any]] = []
    calls: dict[int, list[Any]] = {}
    for event in events:
        if isinstance(event, TextDelta):
            if out and out[-1][0] == "text":
                out[-1][1] += event.text
            elif event.text:
                out.append(["text", event.text])
        elif isinstance(event, ToolCallDelta):
            if event.index not in calls:
                calls[event.index] = ["tool_call", event.name or "", ""]
                out.append(calls[event.index])
            elif event.name:
                calls[event.index][1] += event.name
            calls[event.index][2] += event.arguments
        elif isinstance(event, UsageEvent):
            out.append(["usage", event.usage.model_dump()])
        elif isinstance(event, EndEvent):
            out.append(["end", event.finish_reason])
    for entry in out:
        if entry[0] == "tool_call":
            # An invalid call stays text and is compared as such.
            with contextlib.suppress(json.JSONDecodeError):
                entry[2] = json.loads(entry[2]) if entry[2].strip() else {}
    return [tuple(entry) for entry in out]


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_parity(case: str, local_backend: LocalBackend, remote_backend: RemoteBackend) -> None:
    direct = local_backend.run(_request(CASES[case]))
    served = remote_backend.run(_request(CASES[case]))
    assert comparable(served) == comparable(direct)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_parity(
    case: str, local_backend: LocalBackend, remote_backend: RemoteBackend
) -> None:
    direct = list(local_backend.stream(_request(CASES[case], stream=True)))
    served = list(remote_backend.stream(_request(CASES[case], stream=True)))
    assert shape(served) == shape(direct)
    assert isinstance(served[-1], EndEvent)


@pytest.mark.parametrize("case", ["prompt-greedy", "tool-named", "stop-sequence"])
async def test_async_parity(
    case: str, local_backend: LocalBackend, local_server: ServerHandle
) -> None:
    # A client per test: each async test runs on its own event loop.
    remote = RemoteBackend(
        account_id="parity",
        api_token=TOKEN,
        base_url=local_server.base_url,
        max_retries=0,
        timeout=300,  # a whole-call deadline: generous for a loaded CI machine
    )
    try:
        direct = await local_backend.arun(_request(CASES[case]))
        served = await remote.arun(_request(CASES[case]))
        assert comparable(served) == comparable(direct)
        request = _request(CASES[case], stream=True)
        direct_events = [e async for e in local_backend.astream(request)]
        served_events = [e async for e in remote.astream(request)]
        assert shape(served_events) == shape(direct_events)
    finally:
        await remote.aclose()


ERROR_CASES: dict[str, dict[str, Any]] = {
    # Far past the embedded model's context window.
    "prompt-too-long": {"prompt": "hello " * 20000},
    # Workers AI runs `functions` code itself; the local backend refuses them.
    "functions-unsupported": {
        "messages": [USER],
        "functions": [{"name": "f", "code": "return 1"}],
    },
}


def _raised(call: Any) -> CfLlama2Error:
    with pytest.raises(CfLlama2Error) as info:
        call()
    return info.value


def _assert_same_error(direct: CfLlama2Error, served: CfLlama2Error) -> None:
    status, code = status_and_code_for(direct)
    assert isinstance(served, APIError)
    assert (served.status_code, served.code) == (status, code)
    if isinstance(direct, APIError):
        assert type(served) is type(direct)
    else:
        # A validation error travels as 400/5006: the client raises what that maps to.
        expected = error_from_response(status, {"errors": [{"code": code, "message": ""}]})
        assert type(served) is type(expected)
    assert str(getattr(direct, "message", direct)) in str(served)


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
@pytest.mark.parametrize("stream", [False, True])
def test_error_parity(
    case: str, stream: bool, local_backend: LocalBackend, remote_backend: RemoteBackend
) -> None:
    request = _request(ERROR_CASES[case], stream=stream)
    if stream:
        direct = _raised(lambda: list(local_backend.stream(request)))
        served = _raised(lambda: list(remote_backend.stream(request)))
    else:
        direct = _raised(lambda: local_backend.run(request))
        served = _raised(lambda: remote_backend.run(request))
    _assert_same_error(direct, served)
