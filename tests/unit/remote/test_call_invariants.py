"""Per-call work the remote client does once: what a call's overhead depends on, pinned
without timing anything.

* The endpoint (the parsed URL and the headers with the token) is built once per settings
  object, not once per call; new credentials from the environment make a new one.
* The backend's own clients carry the JSON call's headers as their defaults, so such a call
  passes none (httpx's per-request header merging is skipped; the wire bytes are the same).
* The tools a call sends are worked out once per call, and that one list serves the body, the
  options header and the answer's tool-call parser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.backends.remote.config import RemoteSettings
from cf_llama2.backends.remote.endpoint import call_headers
from cf_llama2.errors import ConfigurationError
from cf_llama2.schema import ChatRequest
from cf_llama2.tools import Tool

from .conftest import WEATHER_TOOL

TOKEN = "tok-SECRET-1234567890"
ENV_NAMES = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN")
CALL_TEXT = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _answer(text: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {
        "result": {"response": text, "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
        "success": True,
        "errors": [],
        "messages": [],
    }
    return lambda request: httpx.Response(200, json=body)


def _count(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Replace ``owner.name`` by a wrapper counting its calls; returns the one-item counter."""
    calls = [0]
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


async def test_endpoint_is_built_once_per_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _count(monkeypatch, RemoteSettings, "request_headers")
    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(_answer("ok")))
    ask = ChatRequest(messages=[{"role": "user", "content": "hi"}])  # type: ignore[list-item]
    for _ in range(3):
        assert backend.run(ask).response == "ok"
    assert [e.type for e in backend.stream(ask)][-1] == "end"
    first = backend._prepare(ask, stream=False)
    again = backend._prepare(ask, stream=True)
    assert built[0] == 1
    assert first.target is again.target  # the URL is parsed once, not per call
    assert str(first.target) == first.url == backend.settings.url
    assert first.headers["Accept"] == "application/json"
    assert again.headers["Accept"] == "text/event-stream"
    first.headers["x-added"] = "1"  # type: ignore[index]  # a call's headers are its own
    assert "x-added" not in backend._prepare(ask, stream=False).headers
    backend.close()


def test_new_credentials_make_a_new_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _answer("ok")(request)

    backend = RemoteBackend(transport=httpx.MockTransport(handler))
    ask = ChatRequest(messages=[{"role": "user", "content": "hi"}])  # type: ignore[list-item]
    for _ in range(2):  # an endpoint without credentials is kept, and refused at every call
        with pytest.raises(ConfigurationError, match="CLOUDFLARE_API_TOKEN"):
            backend.run(ask)
    assert seen == []
    monkeypatch.setenv("CF_ACCOUNT_ID", "first")
    monkeypatch.setenv("CF_AI_API_TOKEN", TOKEN)
    backend.run(ask)
    assert "/accounts/first/" in str(seen[-1].url)
    assert seen[-1].headers["authorization"] == f"Bearer {TOKEN}"
    backend.close()


def _tools_request(**fields: Any) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": "Weather in Paris?"}],  # type: ignore[list-item]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        **fields,
    )


@pytest.mark.parametrize("choice", ["auto", "required", "get_weather"])
def test_sent_tools_are_worked_out_once_per_call(
    monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    worked_out = _count(monkeypatch, ChatRequest, "sent_tools")
    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(_answer(CALL_TEXT)))
    request = _tools_request(tool_choice=choice)
    result = backend.run(request)
    assert worked_out[0] == 1
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert result.finish_reason == "tool_calls"
    events = list(backend.stream(request))  # a JSON answer to a stream request
    assert worked_out[0] == 2
    assert {e.type for e in events} == {"tool_call", "usage", "end"}
    backend.close()


def test_the_tools_worked_out_once_are_the_ones_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _answer(CALL_TEXT)(request)

    backend = RemoteBackend("acc", TOKEN, transport=httpx.MockTransport(handler))
    call = backend._prepare(_tools_request(tool_choice="get_weather"), stream=False)
    assert call.tools is not None
    assert [t.name for t in call.tools] == ["get_weather"]
    assert all(isinstance(t, Tool) for t in call.tools)
    backend.run(_tools_request(tool_choice="get_weather"))
    assert seen[-1].content == call.content
    assert seen[-1].headers["cf-llama2-options"] == call.headers["cf-llama2-options"]
    backend.close()


@pytest.mark.parametrize("fields", [{}, {"stop": ["\n\n"]}])
async def test_own_clients_send_the_json_headers_by_default(fields: dict[str, Any]) -> None:
    own: list[httpx.Request] = []
    given: list[httpx.Request] = []

    def recorder(seen: list[httpx.Request]) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return _answer("ok")(request)

        return handler

    ask = ChatRequest(messages=[{"role": "user", "content": "hi"}], **fields)  # type: ignore[list-item]
    mine = RemoteBackend(
        "acc",
        TOKEN,
        transport=httpx.MockTransport(recorder(own)),
        async_transport=httpx.MockTransport(recorder(own)),
    )
    theirs = RemoteBackend(
        "acc",
        TOKEN,
        http_client=httpx.Client(transport=httpx.MockTransport(recorder(given))),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder(given))),
    )
    for backend in (mine, theirs):
        backend.run(ask)
        list(backend.stream(ask))
        await backend.arun(ask)
    # The same bytes on the wire, header order included, with or without baked defaults.
    assert [r.headers.raw for r in own] == [r.headers.raw for r in given]
    assert [r.content for r in own] == [r.content for r in given]
    call = mine._prepare(ask, stream=False)
    baked = call_headers(mine._sync_client(), call.headers)
    assert baked is None if not fields else baked == call.headers  # options header: passed
    assert call_headers(theirs._sync_client(), call.headers) == call.headers
    await mine.aclose()
