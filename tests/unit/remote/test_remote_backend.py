"""RemoteBackend without a server: injected transports, credentials, secrets, lifecycle."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import subprocess
import sys
from typing import Any

import httpx
import pytest

from cf_llama2.backends.base import Backend, BackendInfo
from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.errors import AuthenticationError, ConfigurationError
from cf_llama2.schema import ChatRequest

TOKEN = "tok-SECRET-1234567890"
ENV_NAMES = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN")
OK = {
    "result": {"response": "ok", "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    "success": True,
    "errors": [],
    "messages": [],
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _ask() -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}])


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed reply."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status = status
        self.body = OK if body is None else body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


def test_is_a_backend_with_workers_ai_info() -> None:
    backend = RemoteBackend("acc", TOKEN, model="@cf/meta/llama-2-7b-chat-fp16")
    assert isinstance(backend, Backend)
    assert backend.info == BackendInfo(
        model="@cf/meta/llama-2-7b-chat-fp16",
        context_window=4096,
        provider="workers-ai",
    )


def test_sync_transport_injection_and_exact_request() -> None:
    recorder = Recorder()
    with RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(recorder)) as backend:
        assert backend.run({"messages": [{"role": "user", "content": "hi"}]}).response == "ok"
    sent = recorder.requests[0]
    assert str(sent.url) == (
        "https://api.cloudflare.com/client/v4/accounts/acc/ai/run/@cf/meta/llama-2-7b-chat-int8"
    )
    assert sent.method == "POST"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(sent.content) == {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "max_tokens": 256,
        "temperature": 0.6,
    }


async def test_async_transport_injection() -> None:
    recorder = Recorder()
    async with RemoteBackend(
        "acc", TOKEN, async_transport=httpx.MockTransport(recorder)
    ) as backend:
        assert (await backend.arun(_ask())).response == "ok"
    assert len(recorder.requests) == 1


def test_a_client_passed_in_is_used_and_left_open() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    with RemoteBackend("acc", TOKEN, http_client=client) as backend:
        backend.run(_ask())
    assert not client.is_closed
    client.close()
    assert len(recorder.requests) == 1


async def test_an_async_client_passed_in_is_used_and_left_open() -> None:
    recorder = Recorder()
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with RemoteBackend("acc", TOKEN, async_http_client=client) as backend:
        await backend.arun(_ask())
    assert not client.is_closed
    await client.aclose()


def test_own_clients_are_closed_and_recreated_on_demand() -> None:
    recorder = Recorder()
    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(recorder))
    backend.run(_ask())
    backend.close()
    backend.run(_ask())  # a fresh client
    backend.close()
    assert len(recorder.requests) == 2


async def test_missing_credentials_raise_at_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    backend = RemoteBackend(
        transport=httpx.MockTransport(recorder), async_transport=httpx.MockTransport(recorder)
    )
    for attempt in (
        lambda: backend.run(_ask()),
        lambda: list(backend.stream(_ask())),
    ):
        with pytest.raises(ConfigurationError) as info:
            attempt()
        assert "CLOUDFLARE_API_TOKEN" in str(info.value)
        assert "CLOUDFLARE_ACCOUNT_ID" in str(info.value)
    with pytest.raises(ConfigurationError):
        await backend.arun(_ask())
    with pytest.raises(ConfigurationError):
        _ = [e async for e in backend.astream(_ask())]
    assert recorder.requests == []
    # Set after construction: used from the next request on.
    monkeypatch.setenv("CF_ACCOUNT_ID", "late")
    monkeypatch.setenv("CF_AI_API_TOKEN", TOKEN)
    assert backend.run(_ask()).response == "ok"
    assert "/accounts/late/" in str(recorder.requests[0].url)
    backend.close()
    await backend.aclose()


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        RemoteBackend("acc", TOKEN, timeout=-1)


def test_the_token_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    body = {"result": None, "success": False, "errors": [{"code": 10000, "message": "bad"}]}
    recorder = Recorder(401, body)
    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(recorder))
    assert TOKEN not in repr(backend)
    assert TOKEN not in str(backend)
    assert TOKEN not in json.dumps(backend.settings.public_dict())
    assert TOKEN not in backend.settings.model_dump_json()
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
        backend.run(_ask())
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert TOKEN not in caplog.text
    backend.close()
    # A pickle carries no token; the copy reads it from the environment again.
    data = pickle.dumps(backend)
    assert TOKEN.encode() not in data
    clone = pickle.loads(data)
    assert clone.settings.api_token is None
    assert clone.settings.model == backend.settings.model
    # In-process copies keep working credentials.
    assert copy.deepcopy(backend).settings.api_token is not None
    assert copy.copy(backend).settings.api_token is not None


def test_copies_do_not_share_the_clients_they_own() -> None:
    recorder = Recorder()
    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(recorder))
    backend.run(_ask())
    clone = copy.deepcopy(backend)
    backend.close()
    assert clone.run(_ask()).response == "ok"
    clone.close()
    shared = httpx.Client(transport=httpx.MockTransport(recorder))
    with RemoteBackend("acc", TOKEN, http_client=shared) as owner:
        assert copy.copy(owner)._sync_client() is shared
    shared.close()


def test_importing_the_core_imports_no_heavy_or_framework_package() -> None:
    code = (
        "import sys, cf_llama2, cf_llama2.backends.remote, cf_llama2.wire\n"
        "import cf_llama2.backends.remote.sse, cf_llama2.backends.remote.retry\n"
        "import cf_llama2.backends.remote.config\n"
        "from cf_llama2 import RemoteBackend\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'bitsandbytes', 'langchain', 'langchain_core', "
        "'llama_index', 'numpy'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""
