"""Every status and Workers AI code of the server, over real HTTP on loopback."""

from __future__ import annotations

import json

import httpx
import pytest

from cf_llama2.errors import (
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    WorkersAIErrorDetail,
)
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import ScriptedBackend, tool_call

from .conftest import AUTH, MODEL, TOKEN, sse_payloads


def _errors(response: httpx.Response) -> list[dict[str, object]]:
    body = response.json()
    assert body["success"] is False
    assert body["result"] is None
    return body["errors"]  # type: ignore[no-any-return]


def test_success_envelope(echo_server: ServerHandle) -> None:
    r = httpx.post(echo_server.run_url(MODEL), json={"prompt": "hello big world"}, headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["success"] is True
    assert body["errors"] == []
    assert body["result"]["response"] == "hello big world"
    assert body["result"]["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
    }


def test_chat_shape_and_mapped_model_name_with_slashes(echo_server: ServerHandle) -> None:
    r = httpx.post(
        echo_server.run_url("local/echo-2", account_id="acct-123"),
        json={"messages": [{"role": "user", "content": "a b"}]},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["response"] == "a b"


def test_stream_framing(echo_server: ServerHandle) -> None:
    with httpx.stream(
        "POST",
        echo_server.run_url(MODEL),
        json={"prompt": "one two three", "stream": True},
        headers=AUTH,
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read()
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    texts = [p["response"] for p in payloads[:-1] if p.get("response")]
    assert "".join(texts) == "one two three"
    usage_events = [p for p in payloads[:-1] if "usage" in p]
    assert len(usage_events) == 1
    assert usage_events[0]["response"] == ""
    assert usage_events[0]["usage"]["total_tokens"] == 6
    # The usage event is late: after every text event.
    assert payloads.index(usage_events[0]) == len(payloads) - 2


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"authorization": "Bearer wrong-token"}, "not the one"),
        ({"authorization": f"Basic {TOKEN}"}, "not 'Bearer"),
        ({"authorization": "Bearer"}, "not 'Bearer"),
    ],
)
def test_401_bad_token(echo_server: ServerHandle, headers: dict[str, str], why: str) -> None:
    r = httpx.post(echo_server.run_url(MODEL), json={"prompt": "hi"}, headers=headers)
    assert r.status_code == 401
    (error,) = _errors(r)
    assert error["code"] == 10000
    assert why in str(error["message"])
    assert TOKEN not in r.text


def test_no_token_configured_accepts_any() -> None:
    with serve_in_thread(ScriptedBackend(["ok", "ok"])) as server:
        for headers in ({}, {"authorization": "Bearer anything"}):
            r = httpx.post(server.run_url(MODEL), json={"prompt": "hi"}, headers=headers)
            assert r.status_code == 200
            assert r.json()["result"]["response"] == "ok"


def test_400_5007_unknown_model(echo_server: ServerHandle) -> None:
    r = httpx.post(echo_server.run_url("@cf/meta/llama-3-8b"), json={"prompt": "hi"}, headers=AUTH)
    assert r.status_code == 400
    (error,) = _errors(r)
    assert error["code"] == 5007
    assert "@cf/meta/llama-3-8b" in str(error["message"])
    assert MODEL in str(error["message"])  # lists what is served


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "hi", "temperature": 9}, "temperature"),
        ({"prompt": "hi", "top_k": 0}, "top_k"),
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": []}, "messages"),
        ({"prompt": "hi", "messages": [{"role": "user", "content": "x"}]}, "prompt"),
        ({"temperature": 0.5}, "messages"),
        ([1, 2], "JSON object"),
    ],
)
def test_400_5006_validation_names_the_field(
    echo_server: ServerHandle, body: object, field: str
) -> None:
    r = httpx.post(echo_server.run_url(MODEL), json=body, headers=AUTH)
    assert r.status_code == 400
    (error,) = _errors(r)
    assert error["code"] == 5006
    assert field in str(error["message"])


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe{}"])
def test_400_5006_not_json(echo_server: ServerHandle, content: bytes) -> None:
    r = httpx.post(echo_server.run_url(MODEL), content=content, headers=AUTH)
    assert r.status_code == 400
    (error,) = _errors(r)
    assert error["code"] == 5006
    assert "JSON" in str(error["message"]) or "UTF-8" in str(error["message"])


def test_413_3006_declared_length() -> None:
    with serve_in_thread(ScriptedBackend(), max_body_bytes=1000) as server:
        body = json.dumps({"prompt": "x" * 2000}).encode()
        r = httpx.post(server.run_url(MODEL), content=body)
        assert r.status_code == 413
        (error,) = _errors(r)
        assert error["code"] == 3006
        assert "1000" in str(error["message"])


def test_413_3006_chunked_body_without_length() -> None:
    def chunks() -> object:
        for _ in range(20):
            yield b"x" * 100

    with serve_in_thread(ScriptedBackend(), max_body_bytes=1000) as server:
        r = httpx.post(server.run_url(MODEL), content=chunks())  # type: ignore[arg-type]
        assert r.status_code == 413
        assert _errors(r)[0]["code"] == 3006


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RequestTooLargeError("prompt is 5000 tokens; the context window is 4096"), 413, 3006),
        (ModelNotFoundError("gone"), 400, 5007),
        (AuthenticationError("no"), 401, 10000),
        (PermissionDeniedError("licence"), 403, 5016),
        (
            BadRequestError(
                "invalid data", status_code=400, errors=[WorkersAIErrorDetail(5004, "invalid data")]
            ),
            400,
            5004,
        ),
        (RuntimeError("kaput"), 500, 3043),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_backend_errors_keep_status_and_code(
    error: BaseException, status: int, code: int, stream: bool
) -> None:
    with serve_in_thread(ScriptedBackend([error])) as server:
        r = httpx.post(server.run_url(MODEL), json={"prompt": "hi", "stream": stream})
    assert r.status_code == status
    (detail,) = _errors(r)
    assert detail["code"] == code


def test_404_and_405_are_workers_ai_envelopes(echo_server: ServerHandle) -> None:
    r = httpx.get(echo_server.run_url(MODEL), headers=AUTH)
    assert r.status_code == 405
    assert "POST" in str(_errors(r)[0]["message"])
    r = httpx.post(echo_server.origin + "/client/v4/nothing", headers=AUTH)
    assert r.status_code == 404
    assert "/ai/run/" in str(_errors(r)[0]["message"])


def test_health(echo_server: ServerHandle) -> None:
    r = httpx.get(echo_server.origin + "/health")
    assert r.status_code == 200
    assert MODEL in r.json()["models"]


def test_options_header_is_honoured() -> None:
    backend = ScriptedBackend([tool_call("get_weather", city="Paris")])
    tools = [
        {
            "name": "get_weather",
            "description": "w",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    options = {"tool_choice": "get_weather", "stop": ["END"]}
    with serve_in_thread(backend) as server:
        r = httpx.post(
            server.run_url(MODEL),
            json={"messages": [{"role": "user", "content": "weather?"}], "tools": tools},
            headers={"cf-llama2-options": json.dumps(options)},
        )
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    (request,) = backend.requests
    assert request.tool_choice == "get_weather"  # type: ignore[union-attr]
    assert request.stop == ["END"]


def test_bad_options_header_is_a_5006(echo_server: ServerHandle) -> None:
    r = httpx.post(
        echo_server.run_url(MODEL),
        json={"prompt": "hi"},
        headers={**AUTH, "cf-llama2-options": "{nope"},
    )
    assert r.status_code == 400
    assert _errors(r)[0]["code"] == 5006
