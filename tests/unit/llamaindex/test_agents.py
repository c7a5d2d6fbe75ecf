"""FunctionAgent and ReActAgent run end to end on a scripted backend (the plumbing, no model)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from llama_index.core.agent.workflow import (
    AgentStream,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.tools import FunctionTool

from cf_llama2.schema import ChatRequest
from cf_llama2.testing import ScriptedBackend, tool_call
from llamaindex_cf_llama2 import CloudflareLlama2
from tests.support.common import LLAMAINDEX_WORKFLOW_WARNINGS

pytestmark = LLAMAINDEX_WORKFLOW_WARNINGS

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    CALLS.append(city)
    return f"Sunny and 21 C in {city}"


WEATHER = FunctionTool.from_defaults(get_weather)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_calls_the_tool_and_answers(streaming: bool) -> None:
    backend = ScriptedBackend(
        [tool_call("get_weather", "call_w", city="Paris"), "It is sunny and 21 C in Paris."]
    )
    agent = FunctionAgent(
        tools=[WEATHER], llm=CloudflareLlama2(backend=backend), streaming=streaming
    )
    handler = agent.run("What is the weather in Paris?")
    deltas: list[str] = []
    streamed_calls: list[str] = []
    results: list[ToolCallResult] = []
    async for event in handler.stream_events():
        if isinstance(event, AgentStream):
            deltas.append(event.delta)
            streamed_calls.extend(c.tool_name for c in event.tool_calls)
        elif isinstance(event, ToolCallResult):
            results.append(event)
    response = await handler
    assert CALLS == ["Paris"]
    assert [r.tool_output.content for r in results] == ["Sunny and 21 C in Paris"]
    assert str(response) == "It is sunny and 21 C in Paris."
    if streaming:
        assert "".join(deltas) == "It is sunny and 21 C in Paris."
        assert "get_weather" in streamed_calls
    # the second request carries the call and its result back to the model
    second = backend.requests[1]
    assert isinstance(second, ChatRequest)
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]
    assert second.messages[2].tool_call_id == "call_w"
    assert second.messages[2].content == "Sunny and 21 C in Paris"


async def test_function_agent_initial_tool_choice_is_forwarded() -> None:
    backend = ScriptedBackend([tool_call("get_weather", city="Rome"), "Sunny in Rome."])
    agent = FunctionAgent(
        tools=[WEATHER],
        llm=CloudflareLlama2(backend=backend),
        initial_tool_choice="get_weather",
    )
    await agent.run("Weather in Rome?")
    first, second = backend.requests
    assert isinstance(first, ChatRequest)
    assert isinstance(second, ChatRequest)
    assert first.tool_choice == "get_weather"
    assert second.tool_choice == "auto"


@pytest.mark.parametrize("streaming", [True, False])
async def test_react_agent_plumbing(streaming: bool) -> None:
    backend = ScriptedBackend(
        [
            "Thought: I need the weather tool.\nAction: get_weather\n"
            'Action Input: {"city": "Lima"}',
            "Thought: I can answer without using any more tools.\nAnswer: It is sunny in Lima.",
        ]
    )
    agent = ReActAgent(tools=[WEATHER], llm=CloudflareLlama2(backend=backend), streaming=streaming)
    response = await agent.run("What is the weather in Lima?")
    assert CALLS == ["Lima"]
    assert "sunny in Lima" in str(response)
    second = backend.requests[1]
    assert isinstance(second, ChatRequest)
    assert second.tools == []  # ReAct describes tools in its own prompt
    assert any("Sunny and 21 C in Lima" in m.content for m in second.messages)


def test_importing_the_adapter_does_not_import_torch() -> None:
    code = (
        "import sys, llamaindex_cf_llama2; "
        "bad = [m for m in ('torch', 'transformers', 'bitsandbytes') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
