"""The OpenAI-compatible routes over raw HTTP: statuses and OpenAI's error shape."""

from __future__ import annotations

import threading

import httpx
import pytest

from cf_llama2.server import DEFAULT_MAX_BODY_BYTES, ServerHandle, serve_in_thread

from .conftest import AUTH, MODEL, sse_payloads
from .fakes import GatedBackend

WAIT = 30.0


def _error(response: httpx.Response) -> dict[str, object]:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("prefix", ["/client/v4/accounts/acct/ai/v1", "/v1"])
def test_statuses_and_error_shape(echo_server: ServerHandle, prefix: str) -> None:
    url = echo_server.origin + prefix
    hi = [{"role": "user", "content": "a b"}]
    ok = httpx.post(f"{url}/chat/completions", json={"model": MODEL, "messages": hi}, headers=AUTH)
    assert ok.status_code == 200
    assert ok.json()["choices"][0]["message"]["content"] == "a b"

    no_token = httpx.post(f"{url}/chat/completions", json={"model": MODEL, "messages": hi})
    assert no_token.status_code == 401
    assert _error(no_token)["code"] == "invalid_api_key"

    no_model = httpx.post(f"{url}/chat/completions", json={"messages": hi}, headers=AUTH)
    assert no_model.status_code == 400
    assert _error(no_model)["param"] == "model"

    not_json = httpx.post(f"{url}/chat/completions", content=b"{", headers=AUTH)
    assert not_json.status_code == 400
    assert "not valid JSON" in str(_error(not_json)["message"])

    too_big = httpx.post(
        f"{url}/chat/completions", content=b" " * (DEFAULT_MAX_BODY_BYTES + 1), headers=AUTH
    )
    assert too_big.status_code == 413
    assert _error(too_big)["type"] == "invalid_request_error"

    wrong_method = httpx.get(f"{url}/chat/completions", headers=AUTH)
    assert wrong_method.status_code == 405
    assert "not allowed" in str(_error(wrong_method)["message"])

    unknown = httpx.post(f"{url}/completions", json={}, headers=AUTH)
    assert unknown.status_code == 404
    assert "chat/completions" in str(_error(unknown)["message"])


def test_full_queue_answers_429_with_retry_after() -> None:
    backend = GatedBackend(tokens=3)
    with serve_in_thread(backend, max_concurrency=1, max_queue=0, retry_after=2) as server:
        url = f"{server.origin}/v1/chat/completions"
        body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
        holder: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: holder.append(
                httpx.post(url, json={**body, "stream": True}, timeout=WAIT)
            )
        )
        thread.start()
        assert backend.started.wait(WAIT)
        refused = httpx.post(url, json=body)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"
        assert _error(refused)["code"] == "rate_limit_exceeded"
        backend.gate.set()
        thread.join(WAIT)
    payloads = sse_payloads(holder[0].content)
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["choices"][0]["finish_reason"] == "length"  # the gated backend says so
