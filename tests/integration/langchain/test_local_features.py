"""ChatCloudflareLlama2 and CloudflareLlama2 on the embedded int8 model: the adapter's own checks.

Forced tool calls and ``json_schema`` answers are grammar constrained on the local backend, so
these assertions hold whatever the 135M model's quality.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel, Field

from langchain_cf_llama2 import ChatCloudflareLlama2, CloudflareLlama2

pytestmark = pytest.mark.slow


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city name, e.g. Paris.")


class Person(BaseModel):
    """A person."""

    name: str = Field(description="The person's first name.")
    age: int = Field(description="The person's age in years.")


@pytest.fixture(scope="module")
def llm() -> ChatCloudflareLlama2:
    return ChatCloudflareLlama2(
        backend="local", temperature=0, max_tokens=96, repetition_penalty=1.2
    )


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def test_forced_tool_call_stream_merges_to_invoke(llm: ChatCloudflareLlama2) -> None:
    bound = llm.bind_tools([GetWeather], tool_choice="GetWeather")
    invoked = bound.invoke("What is the weather in Paris?")
    chunks = list(bound.stream("What is the weather in Paris?"))
    assert all(c.content == "" for c in chunks)
    full = merge(chunks)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        (c["name"], c["args"]) for c in invoked.tool_calls
    ]
    assert invoked.tool_calls[0]["name"] == "GetWeather"
    assert isinstance(invoked.tool_calls[0]["args"]["city"], str)
    assert invoked.response_metadata["finish_reason"] == "tool_calls"
    assert full.usage_metadata == invoked.usage_metadata


async def test_forced_tool_call_astream_merges_to_ainvoke(llm: ChatCloudflareLlama2) -> None:
    bound = llm.bind_tools([GetWeather], tool_choice="any")
    invoked = await bound.ainvoke("What is the weather in Paris?")
    chunks = [c async for c in bound.astream("What is the weather in Paris?")]
    full = merge(chunks)
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        (c["name"], c["args"]) for c in invoked.tool_calls
    ]


def test_structured_output_json_schema_is_constrained(llm: ChatCloudflareLlama2) -> None:
    structured = llm.with_structured_output(Person, method="json_schema", include_raw=True)
    out = structured.invoke("Alice is 30 years old. Describe her.")
    assert isinstance(out, dict)
    assert out["parsing_error"] is None
    assert isinstance(out["parsed"], Person)
    assert set(json.loads(out["raw"].content)) == {"name", "age"}


def test_stop_sequence_cuts_the_answer(llm: ChatCloudflareLlama2) -> None:
    prompt = "Write two sentences about the sea."
    text = str(llm.invoke(prompt, max_tokens=40).content)
    words = text.split()
    assert len(words) >= 4
    stop = words[3]  # a word from the middle of the greedy answer
    cut = str(llm.invoke(prompt, max_tokens=40, stop=[stop]).content)
    assert stop not in cut
    assert text.startswith(cut)
    assert len(cut) <= text.index(stop)
    streamed = "".join(str(c.content) for c in llm.stream(prompt, max_tokens=40, stop=[stop]))
    assert streamed == cut


def test_text_completion_llm() -> None:
    llm = CloudflareLlama2(backend="local", temperature=0, max_tokens=16)
    text = llm.invoke("The capital of France is")
    assert isinstance(text, str)
    assert text
    streamed = "".join(llm.stream("The capital of France is"))
    assert streamed == text
