"""Graceful shutdown: in-flight answers finish; those past the grace period are cancelled."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from cf_llama2.errors import ConfigurationError
from cf_llama2.server import create_app, serve_in_thread

from .conftest import MODEL, sse_payloads
from .fakes import EchoBackend, GatedBackend

WAIT = 20.0


def _refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def _wait_until_refused(host: str, port: int) -> None:
    event = threading.Event()
    for _ in range(2000):
        if _refuses_connections(host, port):
            return
        event.wait(0.01)
    raise AssertionError("the server kept accepting connections after stop()")


def test_in_flight_stream_finishes_during_shutdown() -> None:
    backend = GatedBackend(tokens=4)
    responses: list[httpx.Response] = []
    with serve_in_thread(backend, graceful_timeout=WAIT) as server:
        url = server.run_url(MODEL)
        client = threading.Thread(
            target=lambda: responses.append(
                httpx.post(url, json={"prompt": "x", "stream": True}, timeout=WAIT)
            )
        )
        client.start()
        assert backend.started.wait(WAIT)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        _wait_until_refused(server.host, server.port)  # shutdown has begun
        backend.gate.set()
        stopper.join(WAIT)
        client.join(WAIT)
        assert not server.running
    (response,) = responses
    payloads = sse_payloads(response.content)
    assert payloads[-1] == "[DONE]"
    assert "".join(p["response"] for p in payloads[:-1]) == "t0 t1 t2 t3 "
    assert backend.finished.is_set()
    assert not backend.cancelled.is_set()


def test_shutdown_cancels_what_outlives_the_grace_period() -> None:
    backend = GatedBackend()
    responses: list[bytes] = []

    def read() -> None:
        try:
            with httpx.stream("POST", url, json={"prompt": "x", "stream": True}, timeout=WAIT) as r:
                responses.append(b"".join(r.iter_raw()))
        except httpx.HTTPError:
            responses.append(b"")

    with serve_in_thread(backend, graceful_timeout=0.2) as server:
        url = server.run_url(MODEL)
        client = threading.Thread(target=read)
        client.start()
        assert backend.started.wait(WAIT)
    client.join(WAIT)
    assert backend.cancelled.wait(WAIT)
    assert not backend.finished.is_set()
    assert b"[DONE]" not in responses[0]


def test_app_closes_backends_it_owns() -> None:
    owned, borrowed = EchoBackend(), EchoBackend()
    with serve_in_thread(create_app(owned, close_backends=True)):
        pass
    with serve_in_thread(borrowed):
        pass
    assert owned.closed
    assert not borrowed.closed


def test_busy_port_is_a_clear_error() -> None:
    with (
        serve_in_thread(EchoBackend()) as server,
        pytest.raises(ConfigurationError, match="port"),
        serve_in_thread(EchoBackend(), port=server.port),
    ):
        pass


def test_ready_app_with_options_is_refused() -> None:
    with (
        pytest.raises(ConfigurationError, match="create_app"),
        serve_in_thread(create_app(EchoBackend()), api_token="x"),
    ):
        pass
