"""A scriptable loopback server that speaks the Workers AI wire format over real HTTP.

Each test scripts the answers, in order: :class:`Reply` (a status, headers and a JSON or raw
body, optionally after a pause) and :class:`StreamReply` (SSE events with ``p`` padding, pauses,
gates the test opens, an optional cut before ``data: [DONE]``). Every request received is kept in
:attr:`WorkersAIFake.requests`. The server runs ``http.server.ThreadingHTTPServer`` on port 0
in a thread; use it as a context manager.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Gate",
    "RecordedRequest",
    "Reply",
    "Sleep",
    "StreamReply",
    "WorkersAIFake",
    "error_envelope",
    "ok_envelope",
]


def ok_envelope(
    response: str | None = "",
    *,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    usage: Mapping[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A success envelope as Workers AI sends it."""
    result: dict[str, Any] = {}
    if response is not None:
        result["response"] = response
    if tool_calls is not None:
        result["tool_calls"] = [dict(c) for c in tool_calls]
    result["usage"] = dict(
        usage or {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}
    )
    result.update(extra)
    return {"result": result, "success": True, "errors": [], "messages": []}


def error_envelope(*errors: tuple[int, str]) -> dict[str, Any]:
    """A failure envelope with ``(code, message)`` errors."""
    return {
        "result": None,
        "success": False,
        "errors": [{"code": c, "message": m} for c, m in errors],
        "messages": [],
    }


@dataclass(frozen=True)
class Sleep:
    """Pause the answer (the server waits, interruptibly)."""

    seconds: float


@dataclass
class Gate:
    """Hold the stream until the test calls :meth:`open` (records whether it did in time)."""

    timeout: float = 10.0
    event: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)
    opened_in_time: bool | None = None

    def open(self) -> None:
        self.event.set()


@dataclass
class Reply:
    """One non-streamed answer.

    Args:
        status: the HTTP status.
        body: a JSON-ready object, or ``bytes``/``str`` sent as is.
        headers: extra response headers.
        delay: seconds to wait before answering (for client timeouts).
        content_type: the content type of the body.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class StreamReply:
    """One SSE answer.

    Args:
        events: dicts (sent as ``data: {json}`` with ``p`` padding added), raw strings (sent as
            they are, framing included), :class:`Sleep` and :class:`Gate` items.
        done: send ``data: [DONE]`` at the end.
        cut: close the connection abruptly at the end (an incomplete chunked body).
        pad: add a random-length ``p`` field to every dict event.
        status: the HTTP status.
        headers: extra response headers.
    """

    events: Sequence[Any] = ()
    done: bool = True
    cut: bool = False
    pad: bool = True
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    raw_body: bytes
    client_port: int = 0  # tells connections apart (keep-alive reuse)

    @property
    def json(self) -> Any:
        return json.loads(self.raw_body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: WorkersAIFake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) leaves a broken pipe behind: expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.requests.append(
            RecordedRequest("POST", self.path, headers, body, self.client_address[1])
        )
        reply = fake.next_reply()
        if isinstance(reply, StreamReply):
            self._stream(reply)
        else:
            self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        if reply.delay and self.server.fake.stopping.wait(reply.delay):
            return
        if isinstance(reply.body, bytes):
            data = reply.body
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        else:
            data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, reply: StreamReply) -> None:
        fake = self.server.fake
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        for n, item in enumerate(reply.events):
            if isinstance(item, Sleep):
                if fake.stopping.wait(item.seconds):
                    return
            elif isinstance(item, Gate):
                item.reached.set()
                item.opened_in_time = item.event.wait(item.timeout)
            elif isinstance(item, str):
                self._chunk(item.encode())
            else:
                payload = dict(item)
                if reply.pad:
                    payload["p"] = "abcdefghijklmnopqrstuvwxyz"[: (7 * n + 3) % 26]
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")
        if reply.done:
            self._chunk(b"data: [DONE]\n\n")
        if reply.cut:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class WorkersAIFake:
    """The loopback server; ``base_url`` is what ``RemoteBackend(base_url=...)`` takes."""

    def __init__(self, *replies: Reply | StreamReply) -> None:
        self.replies: list[Reply | StreamReply] = list(replies)
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    def script(self, *replies: Reply | StreamReply) -> None:
        """Add answers, used in order."""
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply | StreamReply:
        with self._lock:
            if self.replies:
                return self.replies.pop(0)
        return Reply(500, error_envelope((3043, "the fake server has no scripted answer left")))

    def start(self) -> WorkersAIFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WorkersAIFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
