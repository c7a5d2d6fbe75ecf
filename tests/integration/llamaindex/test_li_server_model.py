"""FunctionAgent with the remote backend against the local Workers AI-format server on the
embedded int8 model: the acceptance path for ``backend="remote"`` without Cloudflare."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from cf_llama2.backends.factory import default_local_backend
from cf_llama2.server import ServerHandle, serve_in_thread
from llamaindex_cf_llama2 import CloudflareLlama2
from tests.support.common import LLAMAINDEX_WARNINGS

pytestmark = [
    pytest.mark.slow,
    *LLAMAINDEX_WARNINGS,
]

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Get today's weather forecast for a city."""
    CALLS.append(city)
    return f"The weather in {city} is sunny, 21 C."


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with serve_in_thread(default_local_backend(), api_token="local-token") as handle:
        yield handle


@pytest.fixture
def llm(server: ServerHandle) -> Iterator[CloudflareLlama2]:
    llm = CloudflareLlama2(
        account_id="local",
        api_token="local-token",
        base_url=server.base_url,
        max_retries=0,
        timeout=300,
        temperature=0,
        max_tokens=64,
    )
    yield llm
    llm.close()


async def test_function_agent_streams_a_tool_task_through_the_server(
    llm: CloudflareLlama2,
) -> None:
    CALLS.clear()
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=llm,
        system_prompt="You answer weather questions with the get_weather tool.",
        initial_tool_choice="get_weather",
        streaming=True,
    )
    handler = agent.run(
        "What is the weather in Paris?", max_iterations=3, early_stopping_method="generate"
    )
    results: list[ToolCallResult] = []
    streamed = False
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            results.append(event)
        elif isinstance(event, AgentStream) and (event.delta or event.tool_calls):
            streamed = True
    response = await handler
    assert results, "the agent never called the tool"
    assert "paris" in CALLS[0].lower()
    assert streamed
    assert str(response).strip()


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


def test_structured_predict_through_the_server(llm: CloudflareLlama2) -> None:
    city = llm.structured_predict(
        City, PromptTemplate("Which city is this? {text}"), text="The Eiffel Tower is in Paris."
    )
    assert isinstance(city, City)
    assert city.name.strip()
