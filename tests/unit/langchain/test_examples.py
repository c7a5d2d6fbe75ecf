"""The LangChain examples' logic, on the scripted backend (the real runs are in integration)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from cf_llama2.schema import ChatRequest
from cf_llama2.testing import ScriptedBackend, tool_call
from langchain_cf_llama2 import ChatCloudflareLlama2
from tests.support.common import load_example


def test_agent_loop_forces_then_frees_the_tool_choice() -> None:
    agent = load_example("langchain_agent")
    backend = ScriptedBackend(
        [tool_call("get_weather", "call_1", city="Paris"), "It is 18°C and sunny in Paris."]
    )
    llm = ChatCloudflareLlama2(backend=backend, temperature=0)
    answer, messages = agent.run_agent(llm, [agent.get_weather], "Weather in Paris?")
    assert isinstance(answer, AIMessage)
    assert answer.content == "It is 18°C and sunny in Paris."
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["18°C and sunny"]
    choices = [r.tool_choice for r in backend.requests if isinstance(r, ChatRequest)]
    assert choices == ["required", "auto"]


def test_agent_loop_always_ends() -> None:
    agent = load_example("langchain_agent")
    backend = ScriptedBackend([tool_call("get_weather", city="Paris")], repeat_last=True)
    llm = ChatCloudflareLlama2(backend=backend)
    with pytest.raises(RuntimeError, match="did not answer within 3 steps"):
        # A backend that ignores tool_choice='none' would loop; the step limit stops it.
        agent.run_agent(llm, [agent.get_weather], "Weather?")


def test_bm25_ranks_the_matching_document_first() -> None:
    rag = load_example("langchain_rag")
    retriever = rag.BM25Retriever(documents=rag.DOCUMENTS, k=2)
    docs = retriever.invoke("How tall is the Eiffel Tower?")
    assert docs[0].metadata["source"] == "paris.md"
    assert retriever.invoke("zebra quantum") == []


def test_rag_chain_puts_the_context_in_the_prompt() -> None:
    rag = load_example("langchain_rag")
    backend = ScriptedBackend(["It is 330 metres tall."])
    chain = rag.build_chain(
        ChatCloudflareLlama2(backend=backend), rag.BM25Retriever(documents=rag.DOCUMENTS, k=1)
    )
    assert chain.invoke("How tall is the Eiffel Tower?") == "It is 330 metres tall."
    request = backend.requests[0]
    assert isinstance(request, ChatRequest)
    assert "330 metres" in request.messages[0].content
    assert request.messages[-1].content == "How tall is the Eiffel Tower?"
