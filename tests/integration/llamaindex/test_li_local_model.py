"""CloudflareLlama2 on the embedded int8 model: agents, structured output, streaming, async.

The embedded model (SmolLM2-135M-Instruct, int8) is small, so the tasks are built the way a
weak model can finish them: the first agent step forces the single obvious tool, decoding is
greedy (``temperature=0``), and the agent has an iteration cap. What is checked is the contract
(a valid call reaches the tool, its result reaches the model, the run ends with an answer), not
the wording of the answer.
"""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import (
    AgentStream,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field

from llamaindex_cf_llama2 import CloudflareLlama2
from tests.support.common import LLAMAINDEX_WORKFLOW_WARNINGS

pytestmark = [
    pytest.mark.slow,
    *LLAMAINDEX_WORKFLOW_WARNINGS,
]

CALLS: list[str] = []


def get_weather(city: str) -> str:
    """Get today's weather forecast for a city."""
    CALLS.append(city)
    return f"The weather in {city} is sunny, 21 C."


WEATHER = FunctionTool.from_defaults(get_weather)


@pytest.fixture(scope="module")
def llm() -> CloudflareLlama2:
    return CloudflareLlama2(backend="local", temperature=0, max_tokens=64)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def test_metadata_of_the_embedded_model(llm: CloudflareLlama2) -> None:
    meta = llm.metadata
    assert meta.is_function_calling_model
    assert meta.is_chat_model
    assert meta.context_window >= 2048
    assert meta.num_output == 64
    assert "smollm2" in meta.model_name.lower()


async def test_function_agent_streams_a_tool_using_task_to_the_end(llm: CloudflareLlama2) -> None:
    agent = FunctionAgent(
        tools=[WEATHER],
        llm=llm,
        system_prompt="You answer weather questions with the get_weather tool.",
        initial_tool_choice="get_weather",
        streaming=True,
    )
    handler = agent.run(
        "What is the weather in Paris?", max_iterations=3, early_stopping_method="generate"
    )
    results: list[ToolCallResult] = []
    deltas: list[str] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            results.append(event)
        elif isinstance(event, AgentStream):
            deltas.append(event.delta)
    response = await handler
    assert results, "the agent never called the tool"
    assert CALLS
    assert "paris" in CALLS[0].lower()
    assert results[0].tool_output.content.startswith("The weather in")
    assert str(response).strip(), "the agent ended without an answer"
    assert any(deltas), "nothing was streamed"


class Person(BaseModel):
    """A person mentioned in a text."""

    name: str = Field(description="the person's name")
    age: int = Field(description="the person's age in years")


class Trip(BaseModel):
    """A planned trip."""

    city: str
    days: int
    travellers: list[str]


PERSON_TEXTS = [
    "Alice is 31 years old and lives in Lyon.",
    "My grandfather Tomas turned 82 last week.",
    "The new intern, Priya, is twenty-four.",
    "Bob (age 45) manages the shop.",
]


@pytest.mark.parametrize("text", PERSON_TEXTS)
def test_structured_predict_is_always_schema_valid(llm: CloudflareLlama2, text: str) -> None:
    person = llm.structured_predict(
        Person, PromptTemplate("Extract the person from this text: {text}"), text=text
    )
    assert isinstance(person, Person)
    assert person.name.strip()


async def test_astructured_predict_nested_schema(llm: CloudflareLlama2) -> None:
    trip = await llm.astructured_predict(
        Trip,
        PromptTemplate("Plan this trip: {text}"),
        text="Ana and Luis go to Rome for 3 days.",
    )
    assert isinstance(trip, Trip)
    assert all(isinstance(name, str) for name in trip.travellers)


class Address(BaseModel):
    city: str
    country: str


class Contact(BaseModel):
    """A contact card."""

    name: str
    address: Address


def test_structured_predict_nested_model(llm: CloudflareLlama2) -> None:
    contact = llm.structured_predict(
        Contact,
        PromptTemplate("Make a contact card: {text}"),
        text="Marta lives in Porto, Portugal.",
        llm_kwargs={"max_tokens": 128},
    )
    assert isinstance(contact, Contact)
    assert isinstance(contact.address, Address)


def test_as_structured_llm(llm: CloudflareLlama2) -> None:
    structured = llm.as_structured_llm(Person)
    response = structured.chat([ChatMessage(role="user", content=PERSON_TEXTS[0])])
    assert isinstance(response.raw, Person)


def test_stream_chat_final_chunk_matches_the_deltas(llm: CloudflareLlama2) -> None:
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="Name three colours.")]))
    text = "".join(c.delta or "" for c in chunks)
    assert text.strip()
    assert chunks[-1].message.content == text
    assert chunks[-1].additional_kwargs["completion_tokens"] > 0


async def test_astream_chat_with_tools_forced_call(llm: CloudflareLlama2) -> None:
    gen = await llm.astream_chat_with_tools(
        [WEATHER], user_msg="What is the weather in Oslo?", tool_required=True
    )
    chunks = [c async for c in gen]
    calls = llm.get_tool_calls_from_response(chunks[-1])
    assert len(calls) == 1
    assert calls[0].tool_name == "get_weather"
    assert isinstance(calls[0].tool_kwargs.get("city"), str)
    assert calls[0].tool_id.startswith("call_")


async def test_acomplete_and_astream_complete(llm: CloudflareLlama2) -> None:
    done = await llm.acomplete("Write one word: hello", max_tokens=8)
    assert done.text.strip()
    assert done.additional_kwargs["completion_tokens"] <= 8
    chunks = [c async for c in await llm.astream_complete("Count: one, two,", max_tokens=8)]
    assert chunks[-1].text == "".join(c.delta or "" for c in chunks)


def test_every_role_reaches_the_model(llm: CloudflareLlama2) -> None:
    history = [
        ChatMessage(role="system", content="You are a weather assistant."),
        ChatMessage(role="user", content="Weather in Lima?"),
        ChatMessage(
            role="assistant",
            blocks=[
                ToolCallBlock(
                    tool_call_id="call_1", tool_name="get_weather", tool_kwargs={"city": "Lima"}
                )
            ],
        ),
        ChatMessage(
            role="tool",
            content="The weather in Lima is cloudy, 17 C.",
            additional_kwargs={"tool_call_id": "call_1"},
        ),
        ChatMessage(role="user", content="Summarise that in one sentence."),
    ]
    response = llm.chat(history, max_tokens=40)
    assert response.message.content is not None
    assert response.message.content.strip()


async def test_react_agent_on_the_embedded_model(llm: CloudflareLlama2) -> None:
    agent = ReActAgent(tools=[WEATHER], llm=llm, streaming=True)
    try:
        response = await agent.run(
            "What is the weather in Paris?", max_iterations=3, early_stopping_method="generate"
        )
    except Exception as exc:  # the ReAct text format is parsed by LlamaIndex, not by us
        pytest.xfail(f"the 135M model does not follow LlamaIndex's ReAct text format: {exc}")
    if not CALLS:
        pytest.xfail(
            "the 135M model answered without the ReAct 'Action:' format, so no tool ran; the "
            "plumbing is covered with a scripted backend in tests/unit/llamaindex/test_agents.py"
        )
    assert str(response).strip()
