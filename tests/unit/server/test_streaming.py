"""Streams: framing of tool calls, many concurrent clients, disconnects, mid-stream failures."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

from cf_llama2.errors import RequestTooLargeError
from cf_llama2.schema import EndEvent, TextDelta, ToolCallDelta, Usage, UsageEvent
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import ScriptedBackend, tool_call

from .conftest import AUTH, MODEL, sse_payloads
from .fakes import GatedBackend

WAIT = 20.0  # generous bound for events that must happen; never a timing assertion


def test_tool_call_streams_as_one_complete_event() -> None:
    events = [
        TextDelta(text="Let me check. "),
        ToolCallDelta(index=0, id="call_a", name="get_weather", arguments='{"ci'),
        ToolCallDelta(index=0, arguments='ty": "Paris"}'),
        ToolCallDelta(index=1, id="call_b", name="get_time", arguments="{}"),
        UsageEvent(usage=Usage(prompt_tokens=5, completion_tokens=9, total_tokens=14)),
        EndEvent(finish_reason="tool_calls"),
    ]
    with serve_in_thread(ScriptedBackend([events])) as server:
        r = httpx.post(server.run_url(MODEL), json={"prompt": "x", "stream": True})
    payloads = sse_payloads(r.content)
    assert payloads[0] == {"response": "Let me check. "}
    calls = [c for p in payloads[:-1] if isinstance(p, dict) for c in p.get("tool_calls", [])]
    assert calls == [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_time", "arguments": {}},
    ]
    assert all("id" not in c for c in calls)
    last = payloads[-2]
    assert last["usage"] == {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}
    assert last["finish_reason"] == "tool_calls"
    assert payloads[-1] == "[DONE]"


def test_non_stream_tool_call_envelope_has_no_ids() -> None:
    with serve_in_thread(ScriptedBackend([tool_call("get_weather", city="Oslo")])) as server:
        r = httpx.post(server.run_url(MODEL), json={"prompt": "x"})
    result = r.json()["result"]
    assert result["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert result["usage"]["total_tokens"] == 18


async def test_twenty_concurrent_streaming_clients_lose_nothing(echo_server: ServerHandle) -> None:
    async def one(client: httpx.AsyncClient, n: int) -> tuple[int, list[object]]:
        words = " ".join(f"c{n}w{i}" for i in range(30))
        async with client.stream(
            "POST",
            echo_server.run_url(MODEL),
            json={"messages": [{"role": "user", "content": words}], "stream": True},
            headers=AUTH,
        ) as r:
            assert r.status_code == 200
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        return n, sse_payloads(raw)

    async with httpx.AsyncClient(timeout=WAIT) as client:
        results = await asyncio.gather(*(one(client, n) for n in range(20)))
    assert sorted(n for n, _ in results) == list(range(20))
    for n, payloads in results:
        assert payloads[-1] == "[DONE]"
        text = "".join(p["response"] for p in payloads[:-1] if isinstance(p, dict))
        assert text == " ".join(f"c{n}w{i}" for i in range(30))
        assert payloads[-2]["usage"]["completion_tokens"] == 30


def _raw_request(server: ServerHandle, body: dict[str, object]) -> socket.socket:
    data = json.dumps(body).encode()
    path = server.run_url(MODEL).removeprefix(server.origin)
    sock = socket.create_connection((server.host, server.port), timeout=WAIT)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def test_disconnecting_stream_client_stops_generation() -> None:
    backend = GatedBackend()
    with serve_in_thread(backend) as server:
        sock = _raw_request(server, {"prompt": "go", "stream": True})
        received = sock.recv(4096)
        assert b"200" in received.split(b"\r\n", 1)[0]
        assert backend.started.wait(WAIT)
        sock.close()
        assert backend.cancelled.wait(WAIT), "generation went on after the client left"
        assert not backend.finished.is_set()
        assert backend.produced < backend.tokens
        # The slot was given back.
        health = httpx.get(server.origin + "/health").json()
        assert health["running"] == 0


def test_disconnecting_non_stream_client_stops_generation() -> None:
    backend = GatedBackend()
    with serve_in_thread(backend) as server:
        sock = _raw_request(server, {"prompt": "go"})
        assert backend.started.wait(WAIT)
        sock.close()
        assert backend.cancelled.wait(WAIT), "generation went on after the client left"
        assert not backend.finished.is_set()


def test_mid_stream_failure_sends_the_error_and_no_done() -> None:
    async_events: list[object] = [TextDelta(text="partial ")]

    class FailingBackend(ScriptedBackend):
        async def astream(self, request):  # type: ignore[no-untyped-def, override]
            for event in async_events:
                yield event
            raise RequestTooLargeError("context window exceeded mid-way")

    with serve_in_thread(FailingBackend()) as server:
        r = httpx.post(server.run_url(MODEL), json={"prompt": "x", "stream": True})
    assert r.status_code == 200
    payloads = sse_payloads(r.content)
    assert payloads[0] == {"response": "partial "}
    assert "[DONE]" not in payloads
    assert payloads[-1]["success"] is False
    assert payloads[-1]["errors"][0]["code"] == 3006


def test_stream_without_end_event_has_no_done() -> None:
    with serve_in_thread(ScriptedBackend([[TextDelta(text="cut ")]])) as server:
        r = httpx.post(server.run_url(MODEL), json={"prompt": "x", "stream": True})
    payloads = sse_payloads(r.content)
    assert payloads == [{"response": "cut "}]
