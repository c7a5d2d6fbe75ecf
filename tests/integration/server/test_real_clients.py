"""Real clients on the embedded int8 model: the openai SDK and langchain-cloudflare's agent.

Budgets are small (a few tokens): these check the plumbing end to end (grammar-forced tool
calls come back with valid arguments, usage arrives in the stream), not the model's wisdom.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cf_llama2.server import ServerHandle

from .conftest import TOKEN

pytestmark = pytest.mark.slow

MODEL = "@cf/meta/llama-2-7b-chat-int8"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city name"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_openai_sdk_on_the_embedded_model(local_server: ServerHandle) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        base_url=f"{local_server.base_url}/accounts/local/ai/v1", api_key=TOKEN, max_retries=0
    )
    with client:
        _openai_checks(client)


def _openai_checks(client: Any) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=6, seed=1)
    assert plain.choices[0].message.content
    assert plain.usage is not None
    assert plain.usage.completion_tokens <= 6

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=ASK,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1

    forced = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=24,
        temperature=0,
    )
    assert forced.choices[0].finish_reason == "tool_calls"
    (call,) = forced.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)


def test_langchain_cloudflare_agent_on_the_embedded_model(local_server: ServerHandle) -> None:
    pytest.importorskip("langchain_cloudflare")
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelRequest, wrap_model_call
    from langchain_cloudflare import ChatCloudflareWorkersAI
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather of a city."""
        return f"It is sunny in {city}."

    llm = ChatCloudflareWorkersAI(
        account_id="local",
        api_token=TOKEN,
        model=MODEL,
        base_url=local_server.base_url,
        max_tokens=24,
        temperature=0,
    )

    # A 135M model does not choose well between a tool and an answer on its own, so the first
    # model call forces the tool (the client sends OpenAI's tool_choice object) and the next one
    # asks for text ("none"); the loop sends the tool history back in the client's own shape.
    @wrap_model_call
    def call_the_tool_first(request: ModelRequest, handler: Any) -> Any:
        answered = any(isinstance(m, ToolMessage) for m in request.messages)
        return handler(request.override(tool_choice="none" if answered else "get_weather"))

    agent = create_agent(llm, [get_weather], middleware=[call_the_tool_first])
    try:
        out = agent.invoke({"messages": ASK}, {"recursion_limit": 6})
    finally:
        llm.client.close()  # the client's own httpx.Client; it has no close of its own
    messages = out["messages"]
    calls = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    assert calls[0].tool_calls[0]["name"] == "get_weather"
    assert isinstance(calls[0].tool_calls[0]["args"]["city"], str)
    assert [m.content for m in messages if isinstance(m, ToolMessage)]
    assert isinstance(messages[-1], AIMessage)
    assert not messages[-1].tool_calls
    assert messages[-1].content
