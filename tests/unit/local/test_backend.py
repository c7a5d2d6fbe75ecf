"""LocalBackend end to end on a tiny random-weight Llama: every request field, every path."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import jsonschema
import pytest

from cf_llama2 import ChatRequest, PromptRequest, RequestTooLargeError, RequestValidationError
from cf_llama2.schema import EndEvent, TextDelta, UsageEvent
from cf_llama2.schema.reducer import reduce_events

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer", "enum": [1, 2, 3]},
            "detailed": {"type": "boolean"},
        },
        "required": ["unit", "days"],
    },
}
TIME = {
    "name": "get_time",
    "description": "The time in a zone",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string", "enum": ["utc", "cet"]}},
        "required": ["zone"],
    },
}


def chat(content: str = "Hello there", **fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 12)
    return ChatRequest(messages=[{"role": "user", "content": content}], **fields)


def test_info_reads_the_model_config(backend: Any) -> None:
    info = backend.info
    assert info.context_window == 1024
    assert info.provider == "local"


def test_greedy_run_counts_tokens_and_stops_at_max_tokens(backend: Any, tokenizer: Any) -> None:
    result = backend.run(chat(temperature=0, max_tokens=7))
    from cf_llama2.backends.local.chat_format import render_prompt

    prompt_ids = render_prompt(chat(), tokenizer).ids
    assert result.usage is not None
    assert result.usage.prompt_tokens == len(prompt_ids)
    assert result.usage.completion_tokens == 7
    assert result.usage.total_tokens == len(prompt_ids) + 7
    assert result.finish_reason == "length"
    assert result.model == backend.info.model


def test_stream_concatenation_equals_run_for_the_same_seed(backend: Any) -> None:
    request = chat(temperature=0.9, seed=1234, max_tokens=16)
    events = list(backend.stream(request))
    assert isinstance(events[-1], EndEvent)
    assert sum(isinstance(e, UsageEvent) for e in events) == 1
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed == backend.run(request).response
    assert reduce_events(events) == backend.run(request)


def test_same_seed_same_text_other_seed_other_text(backend: Any) -> None:
    texts = [
        backend.run(chat(temperature=1.5, seed=seed, max_tokens=16)).response for seed in (7, 7, 8)
    ]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_sampling_fields_change_the_answer(backend: Any) -> None:
    base = backend.run(chat(temperature=0, max_tokens=16)).response
    penalised = backend.run(
        chat(temperature=0, max_tokens=16, frequency_penalty=2, presence_penalty=2)
    ).response
    repeated = backend.run(chat(temperature=0, max_tokens=16, repetition_penalty=2)).response
    assert penalised != base or repeated != base
    # top_k=1 is greedy whatever the temperature
    assert backend.run(chat(temperature=2, top_k=1, seed=3, max_tokens=16)).response == base


async def test_async_paths_equal_sync(backend: Any) -> None:
    request = chat(temperature=0.8, seed=99, max_tokens=10)
    expected = backend.run(request)
    assert await backend.arun(request) == expected
    events = [e async for e in backend.astream(request)]
    assert reduce_events(events) == expected


async def test_concurrent_async_requests_are_independent(backend: Any) -> None:
    requests = [chat(f"question {i}", temperature=0.7, seed=i + 1) for i in range(3)]
    expected = [backend.run(r) for r in requests]
    got = await asyncio.gather(*(backend.arun(r) for r in requests))
    assert list(got) == expected


def test_concurrent_threads_interleave_safely(backend: Any) -> None:
    requests = [chat(f"thread {i}", temperature=0.7, seed=i + 10) for i in range(3)]
    expected = [backend.run(r) for r in requests]
    got: list[Any] = [None] * 3

    def work(i: int) -> None:
        got[i] = backend.run(requests[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_two_streams_interleaved_in_one_thread(backend: Any) -> None:
    a, b = chat("a", temperature=0, max_tokens=6), chat("b", temperature=0, max_tokens=6)
    sa, sb = backend.stream(a), backend.stream(b)
    events_a, events_b = [], []
    for ea, eb in zip(sa, sb, strict=False):
        events_a.append(ea)
        events_b.append(eb)
    events_a.extend(sa)
    events_b.extend(sb)
    assert reduce_events(events_a) == backend.run(a)
    assert reduce_events(events_b) == backend.run(b)


def test_forced_tool_call_is_schema_valid(backend: Any) -> None:
    for seed in (1, 2, 3):
        request = chat(
            tools=[WEATHER, TIME],
            tool_choice="get_weather",
            temperature=1.0,
            seed=seed,
            max_tokens=60,
        )
        result = backend.run(request)
        assert result.finish_reason == "tool_calls"
        assert result.invalid_tool_calls == []
        (call,) = result.tool_calls
        assert call.name == "get_weather"
        assert call.id.startswith("call_")
        jsonschema.validate(call.arguments, WEATHER["parameters"])
        assert set(call.arguments) <= {"unit", "days", "detailed"}


def test_required_calls_one_of_the_tools(backend: Any) -> None:
    tools = {"get_weather": WEATHER, "get_time": TIME}
    request = chat(tools=list(tools.values()), tool_choice="required", temperature=0, max_tokens=60)
    (call,) = backend.run(request).tool_calls
    jsonschema.validate(call.arguments, tools[call.name]["parameters"])


def test_tool_choice_none_leaves_tools_out_of_the_prompt(backend: Any, tokenizer: Any) -> None:
    from cf_llama2.backends.local.chat_format import render_prompt

    with_tools = render_prompt(chat(tools=[WEATHER]), tokenizer).text
    without = render_prompt(chat(tools=[WEATHER], tool_choice="none"), tokenizer).text
    assert "get_weather" in with_tools
    assert "get_weather" not in without
    result = backend.run(chat(tools=[WEATHER], tool_choice="none", temperature=0))
    assert result.tool_calls == []


def test_response_format_gives_schema_valid_json(backend: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"]},
            "sure": {"type": "boolean"},
        },
        "required": ["answer", "sure"],
        "additionalProperties": False,
    }
    request = chat(
        response_format={"type": "json_schema", "json_schema": schema}, temperature=0, max_tokens=40
    )
    result = backend.run(request)
    jsonschema.validate(json.loads(result.response), schema)
    assert result.finish_reason == "stop"


def test_raw_prompt_is_sent_as_is(backend: Any, tokenizer: Any) -> None:
    text = "Once upon a time"
    result = backend.run(PromptRequest(prompt=text, raw=True, max_tokens=3, temperature=0))
    assert result.usage is not None
    assert result.usage.prompt_tokens == len(tokenizer(text, add_special_tokens=False)["input_ids"])
    wrapped = backend.run(PromptRequest(prompt=text, max_tokens=3, temperature=0))
    assert wrapped.usage is not None
    assert wrapped.usage.prompt_tokens > result.usage.prompt_tokens


def test_prompt_over_the_context_window_names_the_counts(tiny_model: Any, tokenizer: Any) -> None:
    from cf_llama2.backends.local import LocalBackend

    small = LocalBackend(tiny_model, tokenizer=tokenizer, context_window=16)
    with pytest.raises(RequestTooLargeError) as info:
        small.run(chat("a long question " * 10))
    message = str(info.value)
    assert "context window is 16 tokens" in message
    assert "Shorten" in message
    assert info.value.status_code == 413


def test_answer_is_capped_by_the_context_window(tiny_model: Any, tokenizer: Any) -> None:
    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.backends.local.chat_format import render_prompt

    n = len(render_prompt(chat(), tokenizer).ids)
    small = LocalBackend(tiny_model, tokenizer=tokenizer, context_window=n + 3)
    result = small.run(chat(max_tokens=50, temperature=0))
    assert result.usage is not None
    assert result.usage.completion_tokens <= 3


def test_functions_are_refused_with_the_field_named(backend: Any) -> None:
    request = chat(functions=[{"name": "f", "code": "return 1"}])
    with pytest.raises(RequestValidationError) as info:
        backend.run(request)
    assert info.value.field == "functions"


def test_repetition_penalty_zero_is_refused(backend: Any) -> None:
    with pytest.raises(RequestValidationError) as info:
        backend.run(chat(repetition_penalty=0))
    assert info.value.field == "repetition_penalty"


def test_dict_requests_are_validated(backend: Any) -> None:
    result = backend.run({"prompt": "hi", "max_tokens": 2, "temperature": 0})  # type: ignore[arg-type]
    assert result.usage is not None
    assert result.usage.completion_tokens <= 2
