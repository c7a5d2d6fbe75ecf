"""The /ai/run route accepts what Workers AI accepts: extra keys (reported), OpenAI shapes."""

from __future__ import annotations

import json

import httpx
import pytest

from cf_llama2.schema import ChatRequest
from cf_llama2.server import serve_in_thread
from cf_llama2.testing import ScriptedBackend, tool_call
from cf_llama2.wire import OPTIONS_HEADER
from cf_llama2.wire.envelope import NOTE_CODE
from cf_llama2.wire.tolerant import normalize_tool_choice, tolerate_body

from .conftest import AUTH, MODEL, TOKEN

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_unknown_keys_are_dropped_and_reported() -> None:
    body, notes = tolerate_body(
        {
            "messages": [
                {"role": "user", "content": "x", "id": "m1"},
                {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [{"name": "f", "arguments": "{}", "index": 0}],
                },
            ],
            "parallel_tool_calls": False,
            "max_tokens": 5,
        }
    )
    assert body["max_tokens"] == 5
    assert "parallel_tool_calls" not in body
    assert notes == [
        "ignored unknown key 'parallel_tool_calls'",
        "ignored unknown key messages[0].'id'",
        "ignored unknown key messages[1].'refusal'",
        "ignored unknown key messages[1].tool_calls[0].'index'",
    ]


def test_tool_choice_forms() -> None:
    assert normalize_tool_choice("auto") == "auto"
    assert normalize_tool_choice({"type": "function", "function": {"name": "f"}}) == "f"
    assert normalize_tool_choice({"type": "required"}) == "required"
    with pytest.raises(ValueError, match="tool_choice must be"):
        normalize_tool_choice({"type": "function"})


def test_server_accepts_openai_history_and_reports_ignored_keys() -> None:
    backend = ScriptedBackend([tool_call("get_weather", city="Oslo"), "Cold.", "Fine."])
    with serve_in_thread(backend, api_token=TOKEN) as server:
        url = server.run_url(MODEL)
        first = httpx.post(
            url,
            json={
                "messages": [{"role": "user", "content": "Oslo?"}],
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "user": "someone",
            },
            headers=AUTH,
        )
        assert first.status_code == 200, first.text
        assert first.json()["messages"] == [
            {"code": NOTE_CODE, "message": "ignored unknown key 'user'"}
        ]
        call = first.json()["result"]["tool_calls"][0]
        second = httpx.post(
            url,
            json={
                "messages": [
                    {"role": "user", "content": "Oslo?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "type": "function",
                                "function": {
                                    "name": call["name"],
                                    "arguments": json.dumps(call["arguments"]),
                                },
                            }
                        ],
                    },
                    {"role": "tool", "content": [{"type": "text", "text": "-3 C"}]},
                ],
                "tools": [WEATHER],
            },
            headers=AUTH,
        )
        assert second.status_code == 200, second.text
        assert second.json()["result"]["response"] == "Cold."
        assert second.json()["messages"] == []
        bad = httpx.post(
            url,
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"},
            headers=AUTH,
        )
        named = httpx.post(
            url,
            json={"messages": [{"role": "user", "content": "x"}]},
            headers={**AUTH, OPTIONS_HEADER: json.dumps({"tool_choice": {"type": "none"}})},
        )
    assert backend.requests[0].tool_choice == "get_weather"
    history = backend.requests[1]
    assert isinstance(history, ChatRequest)
    assert history.messages[2].tool_call_id == history.messages[1].tool_calls[0].id
    assert history.messages[2].content == "-3 C"
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == 5006
    assert "max_tokens" in bad.json()["errors"][0]["message"]
    # The options header takes the object form too.
    assert named.status_code == 200, named.text
    assert backend.requests[2].tool_choice == "none"
