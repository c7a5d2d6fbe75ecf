"""Connection and body limits over real sockets on loopback: deadlines, caps, quiet leavers."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest

from cf_llama2.cli import _limits
from cf_llama2.errors import ConfigurationError, RateLimitError
from cf_llama2.server import create_app, serve_in_thread
from cf_llama2.server.app import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BYTES_IN_FLIGHT
from cf_llama2.server.connections import BodyBudget, ConnectionLimits

from .conftest import MODEL
from .fakes import EchoBackend

PATH = f"/client/v4/accounts/local/ai/run/{MODEL}"


def _connect(server: Any) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=20)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _head(length: int) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_cli_defaults_are_the_servers() -> None:
    limits = ConnectionLimits()
    assert limits.limit_concurrency == _limits.LIMIT_CONCURRENCY
    assert limits.keep_alive == _limits.KEEP_ALIVE
    assert limits.header_timeout == _limits.HEADER_TIMEOUT
    assert _limits.BODY_TIMEOUT == DEFAULT_BODY_TIMEOUT
    assert _limits.MAX_BYTES_IN_FLIGHT == DEFAULT_MAX_BYTES_IN_FLIGHT


@pytest.mark.parametrize(
    "bad",
    [{"limit_concurrency": 0}, {"keep_alive": 0}, {"header_timeout": -1.0}],
)
def test_limits_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ConnectionLimits(**bad)


def test_silent_connection_is_closed_after_the_head_deadline() -> None:
    with serve_in_thread(EchoBackend(), limits=ConnectionLimits(header_timeout=0.3)) as server:
        idle = _connect(server)
        half = _connect(server)
        half.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\n".encode())
        assert _read_all(idle) == b""  # closed by the server, no answer
        assert _read_all(half) == b""
        idle.close()
        half.close()
        # A request whose head comes in time is answered as usual.
        r = httpx.post(server.run_url(MODEL), json={"prompt": "still here"}, timeout=20)
        assert r.json()["result"]["response"] == "still here"


def test_keep_alive_connection_then_half_head_is_closed_too() -> None:
    with serve_in_thread(EchoBackend(), limits=ConnectionLimits(header_timeout=0.3)) as server:
        sock = _connect(server)
        body = b'{"prompt": "one"}'
        sock.sendall(_head(len(body)) + body)
        first = sock.recv(65536)
        assert b"200 OK" in first
        sock.sendall(f"POST {PATH} HTTP/1.1\r\n".encode())  # the next head never completes
        assert b"HTTP/1.1" not in _read_all(sock)
        sock.close()


def test_slow_body_gets_408() -> None:
    with serve_in_thread(create_app(EchoBackend(), body_timeout=0.3)) as server:
        sock = _connect(server)
        sock.sendall(_head(100) + b'{"prompt": ')
        answer = _read_all(sock).decode()
        sock.close()
    assert answer.startswith("HTTP/1.1 408")
    assert '"code":3007' in answer
    assert "did not arrive within 0.3 s" in answer


def test_bytes_in_flight_are_bounded() -> None:
    app = create_app(EchoBackend(), max_bytes_in_flight=1000)
    with serve_in_thread(app) as server:
        big = {"prompt": "x" * 2000}
        r = httpx.post(server.run_url(MODEL), json=big, timeout=20)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["errors"][0]["code"] == 3040
        assert "max_bytes_in_flight=1000" in r.json()["errors"][0]["message"]
        # Nothing stays counted: small bodies pass afterwards, one after another.
        for _ in range(3):
            ok = httpx.post(server.run_url(MODEL), json={"prompt": "x" * 500}, timeout=20)
            assert ok.status_code == 200


def test_body_budget_counts_and_gives_back() -> None:
    budget = BodyBudget(10)
    budget.take(6)
    with pytest.raises(RateLimitError):
        budget.take(5)
    assert budget.in_flight == 6
    budget.give_back(6)
    budget.take(10)
    assert budget.in_flight == 10
    with pytest.raises(ConfigurationError):
        BodyBudget(0)


def test_client_leaving_during_upload_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serve_in_thread(EchoBackend()) as server:
        for _ in range(3):
            sock = _connect(server)
            sock.sendall(_head(10_000) + b'{"prompt": "')
            sock.close()
        r = httpx.post(server.run_url(MODEL), json={"prompt": "after"}, timeout=20)
        assert r.status_code == 200
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_concurrency_cap_answers_503() -> None:
    with serve_in_thread(EchoBackend(), limits=ConnectionLimits(limit_concurrency=2)) as server:
        held = [_connect(server), _connect(server)]
        r = httpx.post(server.run_url(MODEL), json={"prompt": "x"}, timeout=20)
        assert r.status_code == 503
        for sock in held:
            sock.close()
