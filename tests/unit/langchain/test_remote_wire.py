"""The chat model on the remote backend, over real HTTP to a local Workers-AI-format server.

The server answers from a scripted backend, so these runs are fast and need no model: they check
that credentials, request fields, tool calls, streaming and usage survive the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel, Field

from cf_llama2.errors import AuthenticationError
from cf_llama2.schema import ChatRequest
from cf_llama2.testing import ScriptedBackend, tool_call
from langchain_cf_llama2 import ChatCloudflareLlama2, CloudflareLlama2

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

TOKEN = "wire-test-token"


class GetWeather(BaseModel):
    """Get the weather in a city."""

    city: str = Field(description="The city name.")


_opened: list[ChatCloudflareLlama2 | CloudflareLlama2] = []


@pytest.fixture
def served() -> Iterator[tuple[ScriptedBackend, str]]:
    from cf_llama2.server import serve_in_thread

    backend = ScriptedBackend(model="@cf/meta/llama-2-7b-chat-int8")
    with serve_in_thread(backend, api_token=TOKEN) as server:
        try:
            yield backend, server.base_url
        finally:
            while _opened:  # release the HTTP connections before the server stops
                _opened.pop().close()


def remote(base_url: str, **kwargs: object) -> ChatCloudflareLlama2:
    model = ChatCloudflareLlama2(
        base_url=base_url, account_id="acct", api_token=TOKEN, max_retries=0, **kwargs
    )
    _opened.append(model)
    return model


def test_invoke_over_http(served: tuple[ScriptedBackend, str]) -> None:
    backend, url = served
    backend.add("Hello from the wire.")
    message = remote(url, temperature=0, max_tokens=20).invoke("hi", stop=["never"])
    assert message.content == "Hello from the wire."
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 10
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    assert (request.temperature, request.max_tokens) == (0, 20)


def test_forced_tool_call_stream_equals_invoke_over_http(
    served: tuple[ScriptedBackend, str],
) -> None:
    backend, url = served
    answer = tool_call("GetWeather", city="Paris")
    backend.add(answer, answer)
    bound = remote(url).bind_tools([GetWeather], tool_choice="any")
    invoked = bound.invoke("weather in Paris?")
    chunks = list(bound.stream("weather in Paris?"))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        (c["name"], c["args"]) for c in invoked.tool_calls
    ]
    assert invoked.tool_calls[0]["args"] == {"city": "Paris"}
    assert invoked.tool_calls[0]["id"]
    assert full.tool_calls[0]["id"]
    assert chunks[-1].chunk_position == "last"
    assert full.usage_metadata is not None
    assert full.response_metadata["finish_reason"] == "tool_calls"


async def test_astream_text_over_http(served: tuple[ScriptedBackend, str]) -> None:
    backend, url = served
    backend.add("one two three")
    model = remote(url)
    chunks = [c async for c in model.astream("count")]
    await model.aclose()
    assert "".join(str(c.content) for c in chunks) == "one two three"
    assert chunks[-1].usage_metadata is not None


def test_wrong_token_is_an_authentication_error(served: tuple[ScriptedBackend, str]) -> None:
    _, url = served
    model = ChatCloudflareLlama2(base_url=url, account_id="acct", api_token="wrong", max_retries=0)
    _opened.append(model)
    with pytest.raises(AuthenticationError):
        model.invoke("hi")


def test_llm_over_http(served: tuple[ScriptedBackend, str]) -> None:
    backend, url = served
    backend.add("Paris.")
    llm = CloudflareLlama2(base_url=url, account_id="acct", api_token=TOKEN, max_retries=0)
    _opened.append(llm)
    assert llm.invoke("Capital of France?", raw=True) == "Paris."
