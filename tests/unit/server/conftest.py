from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from cf_llama2.server import ServerHandle, serve_in_thread

from .fakes import EchoBackend

TOKEN = "test-token-not-a-secret"
MODEL = "@cf/meta/llama-2-7b-chat-int8"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def sse_payloads(raw: bytes) -> list[Any]:
    """The ``data:`` payloads of an SSE body: decoded JSON objects, and ``"[DONE]"`` as is."""
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = [line for line in block.split("\n") if line.startswith("data:")]
        assert lines, f"an SSE event without data: {block!r}"
        data = "\n".join(line[5:].lstrip() for line in lines)
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ServerHandle]:
    with serve_in_thread(
        {MODEL: EchoBackend(), "local/echo-2": EchoBackend("echo-2")}, api_token=TOKEN
    ) as server:
        yield server
