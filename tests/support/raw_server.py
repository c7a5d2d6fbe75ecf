"""A raw-socket loopback server for fault tests: it sends scripted bytes at a chosen pace.

Each connection reads one request (headers and ``Content-Length`` body), then sends
``response`` either at once or ``pace`` seconds per byte (a trickle), optionally closing the
connection after ``cut_after`` bytes. It records how many bytes it sent before the client left,
so tests can bound a client's patience by bytes rather than by wall-clock time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RawServer", "http_response"]


def http_response(
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str = "application/json",
    length: int | None = None,
) -> bytes:
    """An HTTP/1.1 response with a ``Content-Length`` (``length`` may lie, to cut a body)."""
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class RawServer:
    """Serve ``response(request_number)`` on loopback; ``pace`` seconds per byte after
    ``fast_prefix`` bytes sent at once; close after ``cut_after`` bytes when set."""

    response: Callable[[int], bytes]
    pace: float = 0.0
    fast_prefix: int = 0
    cut_after: int | None = None
    sent: list[int] = field(default_factory=list)  # bytes sent, per connection
    requests: list[bytes] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RawServer:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/client/v4"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 1 << 20:
            part = conn.recv(65536)
            if not part:
                return data
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        number = len(self.requests)
        self.requests.append(b"")
        index = len(self.sent)
        self.sent.append(0)
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            self.requests[number] = self._read_request(conn)
            data = self.response(number)
            if self.cut_after is not None:
                data = data[: self.cut_after]
            conn.sendall(data[: self.fast_prefix])
            self.sent[index] = min(self.fast_prefix, len(data))
            for i in range(self.fast_prefix, len(data)):
                if self._stop.wait(self.pace):
                    return
                conn.sendall(data[i : i + 1])
                self.sent[index] = i + 1
            if self.cut_after is not None:
                conn.shutdown(socket.SHUT_RDWR)
