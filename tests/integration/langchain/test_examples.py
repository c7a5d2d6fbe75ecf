"""The LangChain examples, end to end on the embedded int8 model."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from langchain_cf_llama2 import ChatCloudflareLlama2
from tests.support.common import load_example

pytestmark = pytest.mark.slow


def test_agent_answers_through_a_tool_call(capsys: pytest.CaptureFixture[str]) -> None:
    agent = load_example("langchain_agent")
    llm = ChatCloudflareLlama2(backend="local", temperature=0, max_tokens=96)
    answer, messages = agent.run_agent(llm, [agent.get_weather], "What is the weather in Paris?")
    first = messages[2]
    assert isinstance(first, AIMessage)
    assert first.tool_calls
    assert first.tool_calls[0]["name"] == "get_weather"
    assert any(isinstance(m, ToolMessage) for m in messages)
    assert isinstance(answer, AIMessage)
    assert answer.text.strip()
    agent.main([])
    assert "tool call: get_weather" in capsys.readouterr().out


def test_rag_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rag = load_example("langchain_rag")
    rag.main([])
    out = capsys.readouterr().out
    assert "retrieved: paris.md" in out
    answer = out.split("answer:", 1)[1].strip()
    assert answer
