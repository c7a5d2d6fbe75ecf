"""OpenAI bodies -> core requests, and core events -> chat.completion chunks (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import EndEvent, ToolCallDelta, Usage, UsageEvent
from cf_llama2.server.openai import ChunkEncoder, openai_body_to_request

HI = [{"role": "user", "content": "hi"}]


def test_extras_are_read_and_unknown_keys_noted() -> None:
    read = openai_body_to_request(
        {
            "model": " m ",
            "messages": HI,
            "max_tokens": 9,
            "max_completion_tokens": 7,
            "response_format": {"type": "text"},
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u",
            "store": False,
        }
    )
    assert read.model == "m"
    assert read.request.max_tokens == 7  # max_completion_tokens wins, as in OpenAI's API
    assert read.request.response_format is None
    assert read.include_usage is True
    assert read.notes == ["ignored unknown key 'user'", "ignored unknown key 'store'"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {}}},
            "response_format.json_schema.schema",
        ),
        ({"n": True}, "n"),
        ({"tool_choice": {"type": "function"}}, "tool_choice"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_values_name_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestValidationError) as error:
        openai_body_to_request({"model": "m", "messages": HI, **extra})
    assert error.value.field == field


def _payloads(data: bytes) -> list[Any]:
    blocks = [b for b in data.decode().split("\n\n") if b]
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def test_chunks_for_a_tool_call_with_usage() -> None:
    encoder = ChunkEncoder("m", include_usage=True)
    out = encoder.encode(ToolCallDelta(index=0, id="c1", name="f", arguments='{"a"'))
    out += encoder.encode(ToolCallDelta(index=0, arguments=": 1}"))
    out += encoder.encode(
        UsageEvent(usage=Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5))
    )
    out += encoder.encode(EndEvent(finish_reason="tool_calls"))
    first, second, end, usage, done = _payloads(out)
    assert first["choices"][0]["delta"] == {
        "role": "assistant",
        "tool_calls": [
            {
                "index": 0,
                "id": "c1",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a"'},
            }
        ],
    }
    assert second["choices"][0]["delta"] == {
        "tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]
    }
    assert end["choices"][0]["finish_reason"] == "tool_calls"
    assert {first["usage"], second["usage"], end["usage"]} == {None}
    assert usage["choices"] == []
    assert usage["usage"]["total_tokens"] == 5
    assert done == "[DONE]"
    assert encoder.done


def test_failure_mid_stream_is_an_openai_error_event() -> None:
    encoder = ChunkEncoder("m")
    (payload,) = _payloads(encoder.encode_error(RequestValidationError("bad", field="x")))
    assert payload["error"]["param"] == "x"
    assert payload["error"]["type"] == "invalid_request_error"
