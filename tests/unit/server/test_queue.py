"""Bounded admission: the queue itself, and 429 + Retry-After over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import httpx
import pytest

from cf_llama2.errors import ConfigurationError, RateLimitError
from cf_llama2.server import AdmissionQueue, serve_in_thread

from .conftest import MODEL, sse_payloads
from .fakes import GatedBackend

WAIT = 20.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_queue": -1}, "max_queue"),
        ({"retry_after": 0}, "retry_after"),
    ],
)
def test_limits_are_checked(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        AdmissionQueue(**kwargs)


async def test_queue_admits_waits_and_refuses() -> None:
    queue = AdmissionQueue(max_concurrency=1, max_queue=1, retry_after=7)
    release = asyncio.Event()
    order: list[str] = []

    async def hold(name: str) -> None:
        async with queue.slot():
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("second"))
    await asyncio.sleep(0)
    assert (queue.running, queue.waiting) == (1, 1)
    with pytest.raises(RateLimitError) as info:
        async with queue.slot():
            pass
    assert info.value.retry_after == 7
    assert info.value.code == 3040
    assert info.value.status_code == 429
    assert "max_queue=1" in str(info.value)
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert (queue.running, queue.waiting) == (0, 0)


async def test_cancelled_waiter_leaves_the_queue() -> None:
    queue = AdmissionQueue(max_concurrency=1, max_queue=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with queue.slot():
            await release.wait()

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 0
    release.set()
    await first
    assert queue.running == 0


def test_full_queue_answers_429_3040_with_retry_after() -> None:
    backend = GatedBackend(tokens=3)
    with serve_in_thread(backend, max_concurrency=1, max_queue=0, retry_after=3) as server:
        url = server.run_url(MODEL)
        holder: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: holder.append(
                httpx.post(url, json={"prompt": "x", "stream": True}, timeout=WAIT)
            )
        )
        thread.start()
        assert backend.started.wait(WAIT)
        refused = httpx.post(url, json={"prompt": "y"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3"
        body = refused.json()
        assert body["success"] is False
        assert body["errors"][0]["code"] == 3040
        backend.gate.set()
        thread.join(WAIT)
        (first,) = holder
        assert sse_payloads(first.content)[-1] == "[DONE]"
        # Capacity is back once the first answer is done.
        again = httpx.post(url, json={"prompt": "z"})
        assert again.status_code == 200
        assert again.json()["result"]["response"] == "t0 t1 t2 "


def test_client_leaving_the_queue_frees_its_place() -> None:
    backend = GatedBackend(tokens=2)
    with serve_in_thread(backend, max_concurrency=1, max_queue=1) as server:
        url = server.run_url(MODEL)
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                httpx.post(url, json={"prompt": "x", "stream": True}, timeout=WAIT)
            )
        )
        thread.start()
        assert backend.started.wait(WAIT)
        # A second client queues, then leaves before its turn.
        body = b'{"prompt": "queued"}'
        path = url.removeprefix(server.origin)
        sock = socket.create_connection((server.host, server.port), timeout=WAIT)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        _wait_for(lambda: httpx.get(server.origin + "/health").json()["waiting"] == 1)
        sock.close()
        _wait_for(lambda: httpx.get(server.origin + "/health").json()["waiting"] == 0)
        # Its place is free again: a new client may queue instead of getting 429.
        backend.gate.set()
        thread.join(WAIT)
        assert sse_payloads(first[0].content)[-1] == "[DONE]"
        assert httpx.post(url, json={"prompt": "z"}).status_code == 200


def _wait_for(condition: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(2000):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the condition never became true")
