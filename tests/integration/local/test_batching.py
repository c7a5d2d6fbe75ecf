"""Continuous batching on the embedded int8 model: a greedy answer is the same alone or batched
(slow)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cf_llama2 import ChatRequest
from cf_llama2.schema.reducer import reduce_events

pytestmark = pytest.mark.slow

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain photosynthesis in one sentence for a curious five-year-old child who asks why.",
    "Hi",
    "Translate 'good morning' into Spanish and German.",
    "What is 12 times 7?",
    "Name a famous painter from the Netherlands and one of their works.",
]
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _requests(forced_call: bool) -> list[ChatRequest]:
    out = [
        ChatRequest(messages=[{"role": "user", "content": p}], max_tokens=12 + 2 * i, temperature=0)
        for i, p in enumerate(PROMPTS)
    ]
    if forced_call:
        out[1] = ChatRequest(
            messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
            tools=[WEATHER],
            tool_choice="get_weather",
            max_tokens=24,
            temperature=0,
        )
    return out


def _key(result: Any) -> tuple[Any, ...]:
    calls = [(c.name, c.arguments) for c in result.tool_calls]
    return result.response, calls, result.finish_reason, result.usage


@pytest.mark.parametrize("forced_call", [False, True], ids=["text", "with-forced-call"])
def test_greedy_answers_are_identical_alone_and_batched(
    embedded_backend: Any, forced_call: bool
) -> None:
    requests = _requests(forced_call)
    alone = [_key(embedded_backend.run(r)) for r in requests]
    results: list[Any] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def go(i: int) -> None:
        start.wait()
        if i % 2:  # half stream, half not
            results[i] = reduce_events(list(embedded_backend.stream(requests[i])))
        else:
            results[i] = embedded_backend.run(requests[i])

    steps = embedded_backend._batcher.steps
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [_key(r) for r in results] == alone
    # Batched for real: far fewer model steps than tokens.
    produced = sum(r.usage.completion_tokens for r in results)
    assert embedded_backend._batcher.steps - steps < produced / 2
    if forced_call:
        assert results[1].tool_calls[0].name == "get_weather"
