"""A tiny loopback server that answers Workers AI requests instantly with canned answers.

Plain asyncio streams, HTTP/1.1 with keep-alive, no framework: it costs as little as possible, so
client-side differences dominate. Modes:

* ``canned``: every ``POST`` gets the same success envelope at once (``"stream": true`` bodies get
  the same answer as an SSE stream, chunked, ending with ``data: [DONE]``).
* ``stamped``: every answer is a stream of ``--events`` text events sent ``--interval-ms`` apart,
  each event's text being ``<T>`` where T is ``time.monotonic_ns()`` (CLOCK_MONOTONIC, shared by
  every process on the machine) taken just before the event is written. A client reading T at
  arrival knows how long the event took to reach it.

    python -m benchmarks.canned_server --port 0 [--mode canned|stamped]

It prints ``PORT <n>`` once listening. Runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

__all__ = ["CANNED_TEXT", "canned_envelope", "main"]

CANNED_TEXT = (
    "The weather in Paris is mild today, around 18 degrees Celsius with light clouds and a "
    "gentle breeze from the west. No rain is expected before the evening."
)
_USAGE = {"prompt_tokens": 31, "completion_tokens": 40, "total_tokens": 71}


def canned_envelope() -> bytes:
    """The non-streaming success envelope every request gets."""
    body = {
        "result": {"response": CANNED_TEXT, "usage": _USAGE},
        "success": True,
        "errors": [],
        "messages": [],
    }
    return json.dumps(body).encode()


def _sse(payload: dict[str, object] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_JSON = canned_envelope()
_JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_JSON)).encode()
    + b"\r\n\r\n"
)
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_CANNED_STREAM = (
    b"".join(_chunk(_sse({"response": word + " ", "p": "abc"})) for word in CANNED_TEXT.split())
    + _chunk(_sse({"response": "", "usage": _USAGE}))
    + _chunk(_sse("[DONE]"))
    + b"0\r\n\r\n"
)


async def _stamped(writer: asyncio.StreamWriter, events: int, interval: float) -> None:
    writer.write(_SSE_HEAD)
    await writer.drain()
    for i in range(events):
        if i:
            await asyncio.sleep(interval)
        writer.write(_chunk(_sse({"response": f"<{time.monotonic_ns()}>"})))
        await writer.drain()
    usage = {"prompt_tokens": 5, "completion_tokens": events, "total_tokens": events + 5}
    writer.write(_chunk(_sse({"response": "", "usage": usage})) + _chunk(_sse("[DONE]")))
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def _handler(mode: str, events: int, interval: float):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length) if length else b""
                stream = b'"stream": true' in body or b'"stream":true' in body
                if mode == "stamped":
                    await _stamped(writer, events, interval)
                elif stream:
                    writer.write(_SSE_HEAD + _CANNED_STREAM)
                    await writer.drain()
                else:
                    writer.write(_JSON_HEAD + _JSON)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


async def _serve(args: argparse.Namespace) -> None:
    server = await asyncio.start_server(
        _handler(args.mode, args.events, args.interval_ms / 1000),
        "127.0.0.1",
        args.port,
        backlog=1024,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["canned", "stamped"], default="canned")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


class Running:
    """Start the server in a subprocess: ``with Running(mode) as base_url: ...``."""

    def __init__(self, mode: str = "canned", **options: float) -> None:
        self.mode = mode
        self.options = options

    def __enter__(self) -> str:
        import subprocess

        from ._common import ROOT

        cmd = [sys.executable, "-m", "benchmarks.canned_server", "--mode", self.mode]
        for key, value in self.options.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"canned server failed to start: {line!r}")
        return f"http://127.0.0.1:{int(line.split()[1])}/client/v4"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


if __name__ == "__main__":
    main()
