"""The step scheduler on a tiny random-weight Llama: requests share model steps, each keeps its
own answer; joins, leaves, cancellation, the batch limit and failures stay per request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import jsonschema
import pytest

from cf_llama2 import ChatRequest, ConfigurationError
from cf_llama2.backends.local import LocalBackend
from cf_llama2.backends.local.batching import BatchedModelRunner, SequenceSlot
from cf_llama2.schema import TextDelta

PROMPTS = [
    "Hello there",
    "What is the weather like in Paris today, and should I take an umbrella with me?",
    "Count: one two three",
    "A much longer question that goes on for a while so that its prompt is the longest one "
    "of this batch by a good margin, to make the other rows padded",
]
TOOL = {
    "name": "get_time",
    "description": "The time in a zone",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string", "enum": ["utc", "cet"]}},
        "required": ["zone"],
    },
}


def chat(content: str, **fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 10)
    fields.setdefault("temperature", 0)
    return ChatRequest(messages=[{"role": "user", "content": content}], **fields)


class Recorder:
    """Wraps the real runner; records the batch size of every decode step."""

    def __init__(self, backend: LocalBackend) -> None:
        self.sizes: list[int] = []
        self.inner = BatchedModelRunner(backend._model, backend._adapters, backend._step_lock)

    def prefill(self, slot: SequenceSlot) -> Any:
        return self.inner.prefill(slot)

    def decode(self, slots: Sequence[SequenceSlot]) -> Any:
        self.sizes.append(len(slots))
        return self.inner.decode(slots)

    def release(self, slot: SequenceSlot) -> None:
        self.inner.release(slot)


@pytest.fixture
def recorded(backend: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Recorder]:
    backend.load()
    recorder = Recorder(backend)
    monkeypatch.setattr(backend, "_new_runner", lambda: recorder)
    return backend, recorder


def in_threads(backend: Any, requests: list[ChatRequest]) -> list[Any]:
    results: list[Any] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def go(i: int) -> None:
        start.wait()
        try:
            results[i] = backend.run(requests[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_requests_share_steps_and_answer_as_alone(recorded: Any) -> None:
    backend, recorder = recorded
    # Different prompt lengths and budgets: rows are padded, requests leave at different steps.
    requests = [chat(p, max_tokens=6 + 3 * i) for i, p in enumerate(PROMPTS)]
    alone = [backend.run(r) for r in requests]
    recorder.sizes.clear()
    together = in_threads(backend, requests)
    assert [r.response for r in together] == [r.response for r in alone]
    assert [r.usage for r in together] == [r.usage for r in alone]
    assert [r.finish_reason for r in together] == [r.finish_reason for r in alone]
    assert max(recorder.sizes) > 1  # they really were decoded in the same steps
    assert sum(recorder.sizes) == sum(r.usage.completion_tokens - 1 for r in alone)


def test_a_request_joins_a_running_batch(recorded: Any) -> None:
    backend, recorder = recorded
    first, second = chat(PROMPTS[0], max_tokens=30), chat(PROMPTS[1], max_tokens=8)
    alone = [backend.run(first).response, backend.run(second).response]
    recorder.sizes.clear()
    stream = backend.stream(first)
    head = [next(stream) for _ in range(3)]  # the first request is running
    joined = backend.run(second)  # joins, runs alongside, leaves first
    rest = list(stream)
    text = "".join(e.text for e in head + rest if isinstance(e, TextDelta))
    assert [text, joined.response] == alone
    assert 2 in recorder.sizes
    assert recorder.sizes[-1] == 1


def test_max_batch_size_caps_the_batch(
    tiny_model: Any, tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(tiny_model, tokenizer=tokenizer, max_batch_size=2).load()
    recorder = Recorder(backend)
    monkeypatch.setattr(backend, "_new_runner", lambda: recorder)
    try:
        results = in_threads(backend, [chat(p, max_tokens=8) for p in PROMPTS])
    finally:
        backend.close()
    assert all(r.usage.completion_tokens > 0 for r in results)
    assert max(recorder.sizes) == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, "8"])
def test_max_batch_size_is_validated(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_batch_size must be an integer >= 1"):
        LocalBackend(max_batch_size=value)


def test_closing_a_stream_frees_its_slot(recorded: Any) -> None:
    backend, recorder = recorded
    stream = backend.stream(chat(PROMPTS[0], max_tokens=200))
    next(stream)
    stream.close()  # the client went away
    result = backend.run(chat(PROMPTS[1], max_tokens=5))
    assert result.usage is not None
    assert result.usage.completion_tokens == 5
    assert backend._batcher.running == 0
    # The abandoned request left at the next step: far fewer than its 200 steps ran.
    assert len(recorder.sizes) < 50


async def test_cancelled_async_request_leaves_the_others_alone(recorded: Any) -> None:
    backend, _ = recorded
    keep = chat(PROMPTS[2], max_tokens=12)
    expected = backend.run(keep).response

    async def abandon() -> None:
        async for _ in backend.astream(chat(PROMPTS[0], max_tokens=200)):
            break

    task = asyncio.create_task(backend.arun(keep))
    await abandon()
    assert (await task).response == expected


def test_grammar_and_free_text_in_one_batch(recorded: Any) -> None:
    backend, recorder = recorded
    free = chat(PROMPTS[1], max_tokens=12)
    forced = chat(PROMPTS[0], max_tokens=40, tools=[TOOL], tool_choice="get_time")
    schema_out = chat(
        PROMPTS[2],
        max_tokens=40,
        response_format={"type": "json_schema", "json_schema": TOOL["parameters"]},
    )
    alone = [backend.run(r) for r in (free, forced, schema_out)]
    recorder.sizes.clear()
    together = in_threads(backend, [free, forced, schema_out])
    assert max(recorder.sizes) > 1
    assert together[0].response == alone[0].response
    (call,) = together[1].tool_calls
    assert call.name == "get_time"
    jsonschema.validate(call.arguments, TOOL["parameters"])
    assert (call.name, call.arguments) == (
        alone[1].tool_calls[0].name,
        alone[1].tool_calls[0].arguments,
    )
    assert together[1].finish_reason == "tool_calls"
    # Random weights may run out of budget inside the JSON; batched, the same text comes out.
    assert together[2].response == alone[2].response
    assert together[2].response.startswith('{"zone":')


def test_an_exception_in_one_request_fails_only_that_request(
    recorded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, _ = recorded
    plan = backend._plan

    def broken_for_seven(request: Any, cancelled: Any) -> Any:
        built = plan(request, cancelled)
        if request.max_tokens == 7:

            def pick(*args: Any) -> int:
                raise RuntimeError("sampler broke")

            built.sampler.pick = pick
        return built

    good = [chat(PROMPTS[0], max_tokens=9), chat(PROMPTS[2], max_tokens=11)]
    expected = [backend.run(r).response for r in good]
    monkeypatch.setattr(backend, "_plan", broken_for_seven)
    results = in_threads(backend, [good[0], chat(PROMPTS[1], max_tokens=7), good[1]])
    assert isinstance(results[1], RuntimeError)
    assert "sampler broke" in str(results[1])
    assert [results[0].response, results[2].response] == expected
    assert backend.run(good[0]).response == expected[0]  # the scheduler carries on


def test_seeded_sampling_is_the_same_alone_or_batched(backend: Any) -> None:
    requests = [chat(p, temperature=0.9, seed=11 + i, max_tokens=8) for i, p in enumerate(PROMPTS)]
    alone = [backend.run(r).response for r in requests]
    assert [r.response for r in in_threads(backend, requests)] == alone


def test_close_fails_running_requests_and_a_new_request_starts_again(backend: Any) -> None:
    stream = backend.stream(chat(PROMPTS[0], max_tokens=300))
    next(stream)
    backend.close()
    with pytest.raises(Exception, match="closed"):
        list(stream)
    assert backend.run(chat(PROMPTS[1], max_tokens=3)).usage.completion_tokens == 3
