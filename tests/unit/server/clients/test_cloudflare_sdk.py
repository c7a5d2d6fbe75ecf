"""The official ``cloudflare`` SDK (``client.ai.run``) against the server (scripted backend)."""

from __future__ import annotations

import json

import pytest

cloudflare = pytest.importorskip("cloudflare")

from cf_llama2.schema import ChatRequest, PromptRequest  # noqa: E402
from cf_llama2.server import ServerHandle  # noqa: E402
from cf_llama2.testing import ScriptedBackend, tool_call  # noqa: E402
from cf_llama2.wire import OPTIONS_HEADER  # noqa: E402

from .conftest import MODEL, TOKEN  # noqa: E402

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(server: ServerHandle) -> cloudflare.Cloudflare:
    return cloudflare.Cloudflare(api_token=TOKEN, base_url=server.base_url, max_retries=0)


def test_chat(client: cloudflare.Cloudflare, backend: ScriptedBackend) -> None:
    backend.add("Hello there")
    result = client.ai.run(
        MODEL, account_id="local", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    assert isinstance(result, dict)
    assert result["response"] == "Hello there"
    assert result["usage"]["total_tokens"] == 12
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    assert request.max_tokens == 5


def test_prompt(client: cloudflare.Cloudflare, backend: ScriptedBackend) -> None:
    backend.add("A poem")
    result = client.ai.run(MODEL, account_id="local", prompt="Write a poem", raw=True)
    assert isinstance(result, dict)
    assert result["response"] == "A poem"
    request = backend.requests[-1]
    assert isinstance(request, PromptRequest)
    assert request.raw is True


def test_tools_with_the_options_header(
    client: cloudflare.Cloudflare, backend: ScriptedBackend
) -> None:
    backend.add(tool_call("get_weather", city="Paris"))
    result = client.ai.run(
        MODEL,
        account_id="local",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        extra_headers={OPTIONS_HEADER: json.dumps({"tool_choice": "get_weather"})},
    )
    assert isinstance(result, dict)
    assert result["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    assert request.tool_choice == "get_weather"


def test_openai_shaped_tool_history(
    client: cloudflare.Cloudflare, backend: ScriptedBackend
) -> None:
    backend.add("It is sunny.")
    result = client.ai.run(
        MODEL,
        account_id="local",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "content": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert isinstance(result, dict)
    assert result["response"] == "It is sunny."
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    call = request.messages[1].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1_0", "get_weather", {"city": "Paris"})
    assert request.messages[2].tool_call_id == "call_1_0"


def test_streaming_response(client: cloudflare.Cloudflare, backend: ScriptedBackend) -> None:
    backend.add("a b c")
    with client.ai.with_streaming_response.run(
        MODEL, account_id="local", prompt="x", stream=True
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert "".join(p["response"] for p in payloads) == "a b c"
    assert payloads[-1]["usage"]["completion_tokens"] == 3


def test_wrong_token(server: ServerHandle, backend: ScriptedBackend) -> None:
    wrong = cloudflare.Cloudflare(api_token="wrong-token", base_url=server.base_url, max_retries=0)
    with pytest.raises(cloudflare.AuthenticationError) as error:
        wrong.ai.run(MODEL, account_id="local", prompt="x")
    assert error.value.status_code == 401
    assert "wrong-token" not in str(error.value)
    assert backend.requests == []


def test_unknown_model(client: cloudflare.Cloudflare, backend: ScriptedBackend) -> None:
    with pytest.raises(cloudflare.BadRequestError) as error:
        client.ai.run("@cf/no/such-model", account_id="local", prompt="x")
    body = error.value.body
    assert isinstance(body, dict)
    assert body["errors"][0]["code"] == 5007
    assert backend.requests == []
