"""Hostile bodies over real HTTP: each is a 400/5006 that says what is wrong, quickly."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cf_llama2.schema import Request, StreamEvent, TextDelta
from cf_llama2.server import serve_in_thread
from cf_llama2.server.body_decode import MAX_JSON_DEPTH

from .conftest import AUTH, MODEL, sse_payloads


def _error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] == code
    return str(body["errors"][0]["message"])


def _post(server: Any, content: bytes | str) -> httpx.Response:
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    return httpx.post(server.run_url(MODEL), content=data, headers=AUTH, timeout=30)


def test_body_nested_10000_levels_is_a_clear_400(echo_server: Any) -> None:
    for body in ("[" * 10_000 + "]" * 10_000, '{"prompt": ' + "[" * 10_000 + "]" * 10_000 + "}"):
        message = _error(_post(echo_server, body), 400, 5006)
        assert f"nested more than {MAX_JSON_DEPTH} levels" in message


def test_nesting_under_the_recursion_limit_is_bounded_too(echo_server: Any) -> None:
    deep = '{"a": ' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    message = _error(_post(echo_server, '{"prompt": "x", "extra": ' + deep + "}"), 400, 5006)
    assert "nested more than" in message
    assert "extra.a.a" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("max_tokens", '"8"', "send 8 without quotes"),
        ("max_tokens", "true", "max_tokens must be an integer"),
        ("max_tokens", "2.0", "send 2"),
        ("stream", '"yes"', "send true or false"),
        ("stream", "1", "stream must be a boolean"),
        ("temperature", '"0.5"', "temperature must be a number"),
        ("temperature", "false", "temperature must be a number"),
        ("top_k", "5.5", "top_k must be an integer"),
        ("raw", '"true"', "raw must be a boolean"),
        ("lora", "7", "lora must be a string"),
    ],
)
def test_wire_types_are_strict(echo_server: Any, field: str, value: str, expected: str) -> None:
    message = _error(_post(echo_server, f'{{"prompt": "hi", "{field}": {value}}}'), 400, 5006)
    assert expected in message


def test_right_wire_types_pass(echo_server: Any) -> None:
    body = '{"prompt": "hi", "max_tokens": 8, "temperature": 0, "top_p": 1, "stream": false}'
    assert _post(echo_server, body).status_code == 200


@pytest.mark.parametrize("where", ["prompt", "content"])
def test_lone_surrogate_is_refused_for_what_it_is(echo_server: Any, where: str) -> None:
    text = '"a\\ud800b"'
    body = (
        f'{{"prompt": {text}}}'
        if where == "prompt"
        else f'{{"messages": [{{"role": "user", "content": {text}}}]}}'
    )
    message = _error(_post(echo_server, body), 400, 5006)
    assert "lone surrogate" in message
    assert "\\ud800" in message
    assert "131072" not in message


def test_non_finite_numbers_are_refused(echo_server: Any) -> None:
    for value in ("NaN", "Infinity", "1e999"):
        message = _error(
            _post(echo_server, f'{{"prompt": "x", "temperature": {value}}}'), 400, 5006
        )
        assert "finite" in message


def _fan_out(levels: int) -> dict[str, Any]:
    defs: dict[str, Any] = {
        f"D{i}": {
            "type": "object",
            "properties": {
                "a": {"$ref": f"#/$defs/D{i + 1}"},
                "b": {"$ref": f"#/$defs/D{i + 1}"},
            },
        }
        for i in range(levels)
    }
    defs[f"D{levels}"] = {"type": "string"}
    return {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {
                "name": "f",
                "description": "fans out",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"$ref": "#/$defs/D0"}},
                    "$defs": defs,
                },
            }
        ],
    }


def test_ref_fan_out_is_refused_while_health_answers(echo_server: Any) -> None:
    health: list[int] = []
    polling = threading.Event()
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=30) as client:
            while (not done.is_set() or len(health) < 3) and len(health) < 500:
                health.append(client.get(f"{echo_server.origin}/health").status_code)
                polling.set()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        assert polling.wait(30)
        response = httpx.post(
            echo_server.run_url(MODEL), json=_fan_out(20), headers=AUTH, timeout=30
        )
    finally:
        done.set()
        poller.join(30)
    message = _error(response, 400, 5006)
    assert "$ref" in message
    assert "too large" in message
    assert len(health) >= 3
    assert set(health) == {200}


class _Boom:
    """A backend whose failure carries text a client must never see."""

    def __init__(self) -> None:
        from cf_llama2.backends.base import BackendInfo

        self.info = BackendInfo(model="boom", provider="boom")

    def run(self, request: Request) -> Any:
        raise NotImplementedError

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        raise NotImplementedError

    async def arun(self, request: Request) -> Any:
        raise RuntimeError("secret internals at /srv/app/model.py line 41")

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        yield TextDelta(text="partial ")
        raise RuntimeError("secret internals at /srv/app/model.py line 42")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def test_internal_errors_are_generic_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cf_llama2.server")
    with serve_in_thread(_Boom()) as server:  # type: ignore[arg-type]
        responses = [
            httpx.post(server.run_url(MODEL), json={"prompt": "x"}, timeout=30) for _ in range(3)
        ]
    ids = set()
    for response in responses:
        message = _error(response, 500, 3043)
        assert "secret" not in response.text
        assert "RuntimeError" not in response.text
        assert "request id" in message
        ids.add(message.split("request id ")[1].split(")")[0])
    assert len(ids) == 3
    failures = [r for r in caplog.records if r.name == "cf_llama2.server" and "failed" in r.msg]
    assert len(failures) == 3
    assert sum(1 for r in failures if r.exc_info) == 1  # the traceback once
    assert all(any(i in r.getMessage() for i in ids) for r in failures)


def test_internal_failure_mid_stream_is_generic(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cf_llama2.server")
    with serve_in_thread(_Boom()) as server:  # type: ignore[arg-type]
        bodies = [
            httpx.post(
                server.run_url(MODEL), json={"prompt": "x", "stream": True}, timeout=30
            ).content
            for _ in range(2)
        ]
    for body in bodies:
        payloads = sse_payloads(body)
        assert payloads[0] == {"response": "partial "}
        assert payloads[-1]["errors"][0]["code"] == 3043
        assert "request id" in payloads[-1]["errors"][0]["message"]
        assert b"secret" not in body
        assert "[DONE]" not in payloads
    failures = [r for r in caplog.records if r.name == "cf_llama2.server" and "failed" in r.msg]
    assert len(failures) == 2
    assert sum(1 for r in failures if r.exc_info) == 1
