"""Shutdown keeps the protocol: 503 envelopes for what waits, error events for open streams,
exit status 0 and "Server stopped" on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from cf_llama2.server import create_app, serve_in_thread

from .conftest import MODEL, TOKEN, sse_payloads
from .fakes import GatedBackend

WAIT = 30.0
ROOT = Path(__file__).resolve().parents[3]


def test_waiting_request_gets_503_when_shutdown_begins() -> None:
    backend = GatedBackend(tokens=2)
    answers: list[httpx.Response] = []
    app = create_app(backend, max_concurrency=1)
    with serve_in_thread(app, graceful_timeout=WAIT) as server:
        url = server.run_url(MODEL)
        first = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json={"prompt": "a"}, timeout=WAIT))
        )
        first.start()
        assert backend.started.wait(WAIT)
        second: list[httpx.Response] = []
        waiter = threading.Thread(
            target=lambda: second.append(httpx.post(url, json={"prompt": "b"}, timeout=WAIT))
        )
        waiter.start()
        for _ in range(3000):
            if app.state.queue.waiting:
                break
            threading.Event().wait(0.01)
        assert app.state.queue.waiting == 1
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        waiter.join(WAIT)
        backend.gate.set()  # the running request may finish
        first.join(WAIT)
        stopper.join(WAIT)
    (refused,) = second
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["errors"][0]["code"] == 3040
    assert "shutting down" in refused.json()["errors"][0]["message"]
    (finished,) = answers
    assert finished.status_code == 200
    assert finished.json()["result"]["response"] == "t0 t1 "


def test_request_running_past_the_grace_period_gets_503() -> None:
    backend = GatedBackend()
    answers: list[httpx.Response] = []
    with serve_in_thread(backend, graceful_timeout=0.3) as server:
        url = server.run_url(MODEL)
        client = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json={"prompt": "a"}, timeout=WAIT))
        )
        client.start()
        assert backend.started.wait(WAIT)
    client.join(WAIT)
    (answer,) = answers
    assert answer.status_code == 503
    assert answer.json()["success"] is False
    assert backend.cancelled.wait(WAIT)


def test_stream_past_the_grace_period_ends_with_an_error_event() -> None:
    backend = GatedBackend()
    bodies: list[bytes] = []

    def read() -> None:
        with httpx.stream("POST", url, json={"prompt": "x", "stream": True}, timeout=WAIT) as r:
            bodies.append(b"".join(r.iter_raw()))  # raises on an unclean end

    with serve_in_thread(backend, graceful_timeout=0.3) as server:
        url = server.run_url(MODEL)
        client = threading.Thread(target=read)
        client.start()
        assert backend.started.wait(WAIT)
    client.join(WAIT)
    (body,) = bodies
    payloads = sse_payloads(body)
    assert payloads[0] == {"response": "t0 "}
    last = payloads[-1]
    assert last["success"] is False
    assert last["status"] == 503
    assert last["errors"][0]["code"] == 3040
    assert "[DONE]" not in payloads
    assert backend.cancelled.wait(WAIT)


def _start_cli(*flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.server.serve_gated", *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    assert process.stdout is not None
    banner = ""
    for _ in range(20):
        line = process.stdout.readline()
        banner += line
        if not line or line.startswith("Try:"):
            break
    return process, banner


def _base(banner: str) -> str:
    match = re.search(r"Serving .* on (http://\S+/client/v4)", banner)
    assert match, banner
    return match.group(1)


def test_sigterm_during_a_stream_ends_it_cleanly_and_exits_0(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    process, banner = _start_cli(
        "--api-token-file", str(token_file), "--graceful-timeout", "1", "--health-auth"
    )
    try:
        base = _base(banner)
        assert f"Bearer $(cat {token_file})" in banner
        assert TOKEN not in banner
        origin = base.removesuffix("/client/v4")
        closed = httpx.get(f"{origin}/health", timeout=WAIT)
        assert closed.status_code == 401
        assert "models" not in closed.text
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{origin}/health", headers=auth, timeout=WAIT).json()["status"] == "ok"
        url = f"{base}/accounts/local/ai/run/{MODEL}"
        body: list[bytes] = []
        with httpx.stream(
            "POST", url, json={"prompt": "x", "stream": True}, headers=auth, timeout=WAIT
        ) as r:
            chunks = r.iter_raw()
            body.append(next(chunks))  # the stream is running
            process.send_signal(signal.SIGTERM)
            body.extend(chunks)  # raises if the stream is cut without its terminator
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    payloads = sse_payloads(b"".join(body))
    assert payloads[0] == {"response": "t0 "}
    assert payloads[-1]["status"] == 503
    assert "shutting down" in payloads[-1]["errors"][0]["message"]
    assert process.returncode == 0, err
    assert "Server stopped" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "env", "hint"),
    [
        ((), {"CF_LLAMA2_SERVER_TOKEN": TOKEN}, "Bearer $CF_LLAMA2_SERVER_TOKEN"),
        (("--api-token", TOKEN), {}, "Bearer <the --api-token value>"),
    ],
)
def test_banner_hint_names_the_token_source(
    flags: tuple[str, ...], env: dict[str, str], hint: str
) -> None:
    clean = env or {"CF_LLAMA2_SERVER_TOKEN": ""}
    process, banner = _start_cli(*flags, env=clean)
    try:
        assert hint in banner
        assert TOKEN not in banner
        origin = _base(banner).removesuffix("/client/v4")
        assert httpx.get(f"{origin}/health", timeout=WAIT).status_code == 200
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    if flags:
        assert "shows in the process list" in err


def test_health_auth_without_a_token_is_refused() -> None:
    from cf_llama2.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="api_token"):
        create_app(GatedBackend(), health_requires_token=True)
