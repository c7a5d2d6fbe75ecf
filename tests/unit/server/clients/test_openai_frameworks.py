"""LangChain's ``ChatOpenAI`` and LlamaIndex's ``OpenAILike`` on the OpenAI-compatible routes."""

from __future__ import annotations

import asyncio

import pytest

from cf_llama2.schema import ChatRequest
from cf_llama2.server import ServerHandle
from cf_llama2.testing import ScriptedBackend, tool_call

from .conftest import MODEL, TOKEN, openai_base


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def _chat_openai(server: ServerHandle) -> object:
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=openai_base(server), api_key=TOKEN, model=MODEL, max_retries=0)


def test_chat_openai_bind_tools(server: ServerHandle, backend: ScriptedBackend) -> None:
    from langchain_core.messages import AIMessage

    llm = _chat_openai(server)
    backend.add(tool_call("get_weather", "call_lc", city="Lima"))
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")  # type: ignore[attr-defined]
    message = bound.invoke("Weather in Lima?")
    assert isinstance(message, AIMessage)
    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "Lima"}, "id": "call_lc", "type": "tool_call"}
    ]
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    assert request.tool_choice == "get_weather"
    backend.add("one two")
    chunks = list(llm.stream("Count"))  # type: ignore[attr-defined]
    assert "".join(str(c.content) for c in chunks) == "one two"


def test_chat_openai_agent_loop(server: ServerHandle, backend: ScriptedBackend) -> None:
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import tool

    backend.add(tool_call("get_weather", city="Paris"), "It is sunny in Paris.")
    agent = create_agent(_chat_openai(server), [tool(get_weather)])  # type: ignore[arg-type]
    out = agent.invoke({"messages": [{"role": "user", "content": "Weather in Paris?"}]})
    messages = out["messages"]
    assert [m.content for m in messages if isinstance(m, ToolMessage)] == ["sunny in Paris"]
    assert isinstance(messages[-1], AIMessage)
    assert messages[-1].content == "It is sunny in Paris."
    history = backend.requests[-1]
    assert isinstance(history, ChatRequest)
    assert history.messages[2].tool_call_id == history.messages[1].tool_calls[0].id


# LlamaIndex's workflow runtime inspects agent objects with inspect.getmembers, which touches
# pydantic's deprecated instance attributes: a warning from llama_index itself.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_llamaindex_openailike_function_agent(
    server: ServerHandle, backend: ScriptedBackend
) -> None:
    pytest.importorskip("llama_index.llms.openai_like")
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(
        model=MODEL,
        api_base=openai_base(server),
        api_key=TOKEN,
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=4096,
        max_retries=0,
    )
    backend.add(tool_call("get_weather", city="Rome"), "Rome is sunny.")
    agent = FunctionAgent(tools=[get_weather], llm=llm)

    async def run() -> object:
        return await agent.run("Weather in Rome?")

    answer = asyncio.run(run())
    assert str(answer) == "Rome is sunny."
    history = backend.requests[-1]
    assert isinstance(history, ChatRequest)
    assert history.messages[-1].role == "tool"
    assert history.messages[-1].content == "sunny in Rome"
