"""CloudflareLlama2 (text completion over the prompt shape) on the scripted backend."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumps

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema import PromptRequest
from cf_llama2.testing import ScriptedBackend
from langchain_cf_llama2 import CloudflareLlama2


def llm(*script: Any, **kwargs: Any) -> tuple[CloudflareLlama2, ScriptedBackend]:
    backend = ScriptedBackend(list(script), model="scripted-llama")
    return CloudflareLlama2(backend=backend, **kwargs), backend


def last_request(backend: ScriptedBackend) -> PromptRequest:
    request = backend.requests[-1]
    assert isinstance(request, PromptRequest)
    return request


def test_invoke_sends_a_prompt_request() -> None:
    model, backend = llm("Paris.", temperature=0, max_tokens=12)
    assert model.invoke("Capital of France?") == "Paris."
    request = last_request(backend)
    assert (request.prompt, request.raw, request.temperature, request.max_tokens) == (
        "Capital of France?",
        False,
        0,
        12,
    )


def test_raw_field_and_per_call_override() -> None:
    model, backend = llm("a", "b", raw=True)
    model.invoke("[INST] hi [/INST]")
    assert last_request(backend).raw is True
    model.invoke("hi", raw=False, stop=["\n"], seed=3)
    request = last_request(backend)
    assert (request.raw, request.stop, request.seed) == (False, ["\n"], 3)


def test_generate_reports_usage() -> None:
    model, _ = llm("one two", "three")
    result = model.generate(["a", "b"])
    assert [g[0].text for g in result.generations] == ["one two", "three"]
    assert result.generations[0][0].generation_info == {
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }
    assert result.llm_output == {
        "model_name": "scripted-llama",
        "token_usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
    }


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_stream_and_callbacks() -> None:
    model, backend = llm("alpha beta gamma")
    counter = Tokens()
    pieces = list(model.stream("go", config={"callbacks": [counter]}))
    assert last_request(backend).stream is True
    assert "".join(pieces) == "alpha beta gamma"
    assert counter.tokens == ["alpha ", "beta ", "gamma"]


async def test_astream_and_ainvoke() -> None:
    model, _ = llm("alpha beta", "gamma")
    assert "".join([p async for p in model.astream("go")]) == "alpha beta"
    assert await model.ainvoke("go") == "gamma"


@pytest.mark.parametrize("streaming", [True, False])
async def test_streaming_flag(streaming: bool) -> None:
    model, backend = llm("x y", "x y", streaming=streaming)
    counter = Tokens()
    assert model.invoke("go", config={"callbacks": [counter]}) == "x y"
    assert await model.ainvoke("go") == "x y"
    assert last_request(backend).stream is streaming
    assert counter.tokens == (["x ", "y"] if streaming else [])


def test_unknown_keyword() -> None:
    model, _ = llm("a")
    with pytest.raises(RequestValidationError, match="unknown keyword argument 'n'"):
        model.invoke("hi", n=2)


def test_identity_and_secrets() -> None:
    model = CloudflareLlama2(api_token="very-secret", account_id="acct", temperature=0.5)
    assert model._llm_type == "cloudflare-llama2"
    assert "very-secret" not in repr(model) + dumps(model)
    assert model._identifying_params["model"] == "@cf/meta/llama-2-7b-chat-int8"
    params = model._get_ls_params()
    assert (params["ls_provider"], params["ls_model_type"], params["ls_temperature"]) == (
        "cloudflare",
        "llm",
        0.5,
    )
