"""One scripted server for the real-client tests: each test scripts its answers, then calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import ScriptedBackend

TOKEN = "clients-token-not-a-secret"
MODEL = "@cf/meta/llama-2-7b-chat-int8"
LORA = "registered-adapter"


@pytest.fixture(scope="package")
def scripted() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture(scope="package")
def server(scripted: ScriptedBackend) -> Iterator[ServerHandle]:
    with serve_in_thread(scripted, api_token=TOKEN, lora_adapters=[LORA]) as handle:
        yield handle


@pytest.fixture
def backend(scripted: ScriptedBackend, server: ServerHandle) -> Iterator[ScriptedBackend]:
    """The scripted backend behind ``server``, with no answers or requests left from before."""
    scripted.requests.clear()
    scripted._script.clear()
    yield scripted
    scripted._script.clear()


def openai_base(server: ServerHandle) -> str:
    return f"{server.base_url}/accounts/local/ai/v1"
