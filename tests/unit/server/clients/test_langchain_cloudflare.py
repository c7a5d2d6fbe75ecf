"""``langchain-cloudflare`` pointed at the server: a full ``create_agent`` tool loop."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_cloudflare")
pytest.importorskip("langchain.agents")

from langchain.agents import create_agent
from langchain_cloudflare import ChatCloudflareWorkersAI
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from cf_llama2.schema import ChatRequest
from cf_llama2.server import ServerHandle
from cf_llama2.testing import ScriptedBackend, tool_call

from .conftest import MODEL, TOKEN


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_create_agent_tool_loop(server: ServerHandle, backend: ScriptedBackend) -> None:
    backend.add(tool_call("get_weather", city="Paris"), "It is sunny in Paris.")
    llm = ChatCloudflareWorkersAI(
        account_id="local", api_token=TOKEN, model=MODEL, base_url=server.base_url
    )
    agent = create_agent(llm, [get_weather])
    try:
        out = agent.invoke({"messages": [{"role": "user", "content": "Weather in Paris?"}]})
    finally:
        llm.client.close()  # the client's own httpx.Client; it has no close of its own
    messages = out["messages"]
    calls = [m for m in messages if isinstance(m, AIMessage) and m.tool_calls]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert calls
    assert calls[0].tool_calls[0]["args"] == {"city": "Paris"}
    assert [r.content for r in results] == ["sunny in Paris"]
    assert isinstance(messages[-1], AIMessage)
    assert messages[-1].content == "It is sunny in Paris."
    # The second model call carried the tool history in the client's own shape.
    second = backend.requests[-1]
    assert isinstance(second, ChatRequest)
    assistant, result = second.messages[1], second.messages[2]
    assert assistant.tool_calls[0].name == "get_weather"
    assert result.role == "tool"
    assert result.tool_call_id == assistant.tool_calls[0].id
    assert result.content == "sunny in Paris"
