"""The LangChain examples, end to end on the embedded int8 model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from langchain_cf_llama2 import ChatCloudflareLlama2

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_agent_answers_through_a_tool_call(capsys: pytest.CaptureFixture[str]) -> None:
    agent = load("langchain_agent")
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
    rag = load("langchain_rag")
    rag.main([])
    out = capsys.readouterr().out
    assert "retrieved: paris.md" in out
    answer = out.split("answer:", 1)[1].strip()
    assert answer
