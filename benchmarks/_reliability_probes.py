"""Probes of the server's reliability (used by :mod:`benchmarks.server_reliability`).

Every probe talks real HTTP to a server on loopback and returns plain numbers. The backend is a
fake that streams tokens with a short sleep between them, so the probes measure the server
(admission, decoding, connections, shutdown) and not a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from cf_llama2.backends.base import BackendInfo
from cf_llama2.errors import CfLlama2Error
from cf_llama2.schema import ChatResult, EndEvent, Request, StreamEvent, TextDelta
from cf_llama2.schema.reducer import areduce_events

MODEL = "@cf/meta/llama-2-7b-chat-int8"


class TickingBackend:
    """Streams ``tokens`` pieces, ``delay`` seconds apart (a stand-in for a model)."""

    def __init__(self, tokens: int = 8, delay: float = 0.005) -> None:
        self.tokens = tokens
        self.delay = delay
        self.info = BackendInfo(model="ticking", provider="ticking")

    def run(self, request: Request) -> ChatResult:
        raise NotImplementedError("the server uses the async methods")

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        raise NotImplementedError("the server uses the async methods")

    async def arun(self, request: Request) -> ChatResult:
        return await areduce_events(self.astream(request))

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for i in range(min(self.tokens, request.max_tokens)):
            await asyncio.sleep(self.delay)
            yield TextDelta(text=f"t{i} ")
        yield EndEvent(finish_reason="length", model="ticking")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _complete_stream(body: bytes) -> bool:
    return body.rstrip().endswith(b"data: [DONE]")


def load(url: str, clients: int, retries: int = 60) -> dict[str, int]:
    """``clients`` requests at once (half streamed); 429s retried after ``Retry-After``.

    ``lost``: a connection error or an answer that is neither complete nor a typed refusal;
    ``gave_up``: still refused (429) after ``retries`` tries.
    """
    counts = {"answered": 0, "refused_429_then_retried": 0, "gave_up": 0, "lost": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def one(i: int) -> None:
        stream = i % 2 == 1
        barrier.wait()
        for _ in range(retries):
            try:
                r = httpx.post(url, json={"prompt": "x", "stream": stream}, timeout=60)
            except httpx.HTTPError:
                with lock:
                    counts["lost"] += 1
                return
            if r.status_code == 429:
                with lock:
                    counts["refused_429_then_retried"] += 1
                time.sleep(float(r.headers.get("retry-after", "1")) * random.random())
                continue
            ok = r.status_code == 200 and (
                _complete_stream(r.content) if stream else r.json()["success"]
            )
            with lock:
                counts["answered" if ok else "lost"] += 1
            return
        with lock:
            counts["gave_up"] += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def fan_out_body(levels: int = 20) -> dict[str, Any]:
    """The tool schema whose ``$ref``s double at each of ``levels`` levels (about 2 KB)."""
    defs: dict[str, Any] = {
        f"D{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}},
        }
        for i in range(levels)
    }
    defs[f"D{levels}"] = {"type": "string"}
    parameters = {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}
    return {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "description": "fans out", "parameters": parameters}],
    }


def fan_out(url: str, health: str) -> dict[str, Any]:
    """Seconds to answer the fan-out request, and ``/health`` latencies before and during it."""
    polls: list[tuple[float, float]] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                start = time.perf_counter()
                client.get(health)
                polls.append((start, time.perf_counter()))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    start = time.perf_counter()
    r = httpx.post(url, json=fan_out_body(), timeout=60)
    end = time.perf_counter()
    time.sleep(0.2)
    done.set()
    poller.join()
    during = [b - a for a, b in polls if b > start and a < end]
    before = sorted(b - a for a, b in polls if b <= start)
    return {
        "status": r.status_code,
        "code": r.json()["errors"][0]["code"] if r.status_code != 200 else None,
        "seconds": end - start,
        "health_max_ms": max(during) * 1000,
        "health_polls": len(during),
        "health_before_median_ms": before[len(before) // 2] * 1000,
    }


def _connect(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=30)


def _head(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def disconnects(server: Any, count: int) -> dict[str, int]:
    """Clients that leave mid-stream and mid-upload; slots held afterwards."""
    path = server.run_url(MODEL).split(str(server.port), 1)[1]
    for _ in range(count):
        with httpx.stream("POST", server.run_url(MODEL), json={"prompt": "x", "stream": True}) as r:
            next(r.iter_raw())  # leave after the first chunk
        sock = _connect(server.host, server.port)
        sock.sendall(_head(path, 10_000) + b'{"prompt": "')
        sock.close()
    for _ in range(500):
        if server.app.state.queue.running == 0:
            break
        time.sleep(0.01)
    return {"left": 2 * count, "slots_still_held": server.app.state.queue.running}


def slow_connections(server: Any, count: int, header_timeout: float) -> dict[str, Any]:
    """Idle and half-sent connections: how many the server closed, and how soon."""
    socks = [_connect(server.host, server.port) for _ in range(count)]
    for i, sock in enumerate(socks):
        if i % 2:
            sock.sendall(b"POST /client/v4/ HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    start = time.perf_counter()
    closed = 0
    for sock in socks:
        sock.settimeout(header_timeout + 10)
        with contextlib.suppress(OSError):
            closed += sock.recv(1) == b""
        sock.close()
    return {"opened": count, "closed_by_server": closed, "seconds": time.perf_counter() - start}


def slow_body(server: Any) -> int:
    """The status a body that never completes gets."""
    path = server.run_url(MODEL).split(str(server.port), 1)[1]
    sock = _connect(server.host, server.port)
    sock.sendall(_head(path, 100) + b'{"prompt": ')
    answer = sock.recv(65536)
    sock.close()
    return int(answer.split(b" ", 2)[1])


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def count_warnings() -> _Counter:
    """A handler counting warnings and errors logged from now on."""
    handler = _Counter()
    logging.getLogger().addHandler(handler)
    return handler


def _random_body(rnd: random.Random) -> bytes:
    pieces = ["{", "}", "[", "]", ":", ",", '"', "\\ud800", "null", "true", "1", "2.0", '"x"']
    keys = ["prompt", "messages", "stream", "max_tokens", "temperature", "tools", "raw", "lora"]
    values: list[Any] = [None, True, 0, 8, 2.0, "8", "yes", "", [], {}, [1, [2]], {"a": {}}]
    values.append([{"role": "user", "content": "hi"}])
    if rnd.random() < 0.3:
        return "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 30))).encode(
            "utf-8", "surrogatepass"
        )
    body = {rnd.choice(keys): rnd.choice(values) for _ in range(rnd.randint(0, 5))}
    return json.dumps(body).encode()


def bad_inputs(cases: int, seed: int = 0) -> dict[str, int]:
    """Random bodies through the server's decoder: requests, typed errors, anything else."""
    from cf_llama2.server.app import _decode

    rnd = random.Random(seed)
    out = {"cases": cases, "valid": 0, "typed_error": 0, "unhandled": 0}
    for _ in range(cases):
        try:
            _decode(_random_body(rnd), None)
        except CfLlama2Error:
            out["typed_error"] += 1
        except Exception:
            out["unhandled"] += 1
        else:
            out["valid"] += 1
    return out


def hostile(url: str) -> list[list[Any]]:
    """Named hostile bodies and the status and code each got."""
    bodies: list[tuple[str, bytes]] = [
        ("nested 10,000 levels", b"[" * 10_000 + b"]" * 10_000),
        ('max_tokens: "8"', b'{"prompt": "x", "max_tokens": "8"}'),
        ("max_tokens: true", b'{"prompt": "x", "max_tokens": true}'),
        ("max_tokens: 2.0", b'{"prompt": "x", "max_tokens": 2.0}'),
        ('stream: "yes"', b'{"prompt": "x", "stream": "yes"}'),
        ("lone surrogate", b'{"prompt": "a\\ud800"}'),
        ("temperature: NaN", b'{"prompt": "x", "temperature": NaN}'),
        ("tools: true", b'{"messages": [{"role": "user", "content": "x"}], "tools": true}'),
        ("not UTF-8", b'{"prompt": "\xff"}'),
        ("$ref fan-out, 20 levels", json.dumps(fan_out_body()).encode()),
    ]
    rows = []
    for name, body in bodies:
        r = httpx.post(url, content=body, timeout=60)
        rows.append([name, r.status_code, r.json()["errors"][0]["code"]])
    return rows


def serve_slow_child(grace: float) -> None:
    """Child process: ``cf-llama2 serve``'s loop on a slow 3000-token backend."""
    from cf_llama2.cli import build_parser
    from cf_llama2.cli.serve import _run_server

    args = build_parser().parse_args(["serve", "--port", "0", "--graceful-timeout", str(grace)])
    sys.exit(_run_server(args, {MODEL: TickingBackend(3000, 0.01)}, None, sys.stdout, []))


def sigterm(grace: float) -> dict[str, Any]:
    """SIGTERM during a 3000-token stream: exit status, seconds to exit, how the stream ended."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server_reliability", "--serve-slow", str(grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ},
    )
    assert process.stdout is not None
    base = ""
    while not base:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the child server did not start")
        if line.startswith("Serving"):
            base = line.split(" on ")[1].strip()
    body = b""
    url = f"{base}/accounts/local/ai/run/{MODEL}"
    request = {"prompt": "x", "stream": True, "max_tokens": 3000}
    with httpx.stream("POST", url, json=request, timeout=60) as r:
        chunks = r.iter_raw()
        body += next(chunks)
        process.send_signal(signal.SIGTERM)
        start = time.perf_counter()
        clean = True
        try:
            for chunk in chunks:
                body += chunk
        except httpx.HTTPError:
            clean = False
    out, _ = process.communicate(timeout=60)
    last = body.rstrip().split(b"\n\n")[-1]
    return {
        "exit_status": process.returncode,
        "seconds_to_exit": time.perf_counter() - start,
        "clean_end": clean,
        "error_event": b'"status":503' in last,
        "server_stopped_printed": "Server stopped" in out,
    }
