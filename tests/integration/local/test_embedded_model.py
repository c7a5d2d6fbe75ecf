"""The acceptance list of the local backend, on the embedded SmolLM2 int8 model (slow)."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cf_llama2 import ChatRequest, PromptRequest
from cf_llama2.schema import TextDelta
from cf_llama2.schema.reducer import reduce_events

pytestmark = pytest.mark.slow

TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
    {
        "name": "convert_currency",
        "description": "Convert an amount of money from one currency to another",
        "parameters": {
            "type": "object",
            "properties": {
                "amount": {"type": "number", "description": "Amount to convert"},
                "from_currency": {"type": "string", "description": "ISO code, e.g. USD"},
                "to_currency": {"type": "string", "description": "ISO code, e.g. EUR"},
            },
            "required": ["amount", "from_currency", "to_currency"],
        },
    },
    {
        "name": "set_alarm",
        "description": "Set an alarm",
        "parameters": {
            "type": "object",
            "properties": {
                "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                "minute": {"type": "integer", "minimum": 0, "maximum": 59},
                "label": {"type": "string"},
            },
            "required": ["hour", "minute"],
        },
    },
]
SCHEMAS = {t["name"]: t["parameters"] for t in TOOLS}
QUESTIONS = [
    "What's the weather like in Paris?",
    "How much is 100 dollars in euros?",
    "Wake me up at 7:30 tomorrow.",
]


def chat(content: str, **fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 64)
    return ChatRequest(messages=[{"role": "user", "content": content}], **fields)


def test_answers_the_capital_of_france(embedded_backend: Any) -> None:
    result = embedded_backend.run(chat("What is the capital of France?", temperature=0))
    assert "Paris" in result.response
    assert result.usage is not None
    assert result.usage.completion_tokens > 0
    assert result.finish_reason == "stop"


def test_raw_prompt_in_the_models_own_format(embedded_backend: Any) -> None:
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    result = embedded_backend.run(
        PromptRequest(prompt=prompt, raw=True, temperature=0, max_tokens=32)
    )
    assert "Paris" in result.response


def test_forced_tool_gives_a_schema_valid_call(embedded_backend: Any) -> None:
    result = embedded_backend.run(
        chat(QUESTIONS[0], tools=TOOLS, tool_choice="get_weather", temperature=0)
    )
    assert result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call.name == "get_weather"
    jsonschema.validate(call.arguments, SCHEMAS["get_weather"])


def test_each_tool_choice_is_obeyed_every_time(embedded_backend: Any) -> None:
    # Every tool forced on every question (even the ones that do not fit), greedy and sampled.
    cases = [(tool, question, 0.0, None) for tool in TOOLS for question in QUESTIONS]
    cases += [(tool, QUESTIONS[i], 0.8, 11) for i, tool in enumerate(TOOLS)]
    named = []
    for tool, question, temperature, seed in cases:
        request = chat(
            question, tools=TOOLS, tool_choice=tool["name"], temperature=temperature, seed=seed
        )
        result = embedded_backend.run(request)
        assert result.invalid_tool_calls == [], (tool["name"], question)
        (call,) = result.tool_calls
        jsonschema.validate(call.arguments, SCHEMAS[tool["name"]])
        named.append(call.name == tool["name"])
    assert len(named) == 12
    assert all(named)


def test_auto_calls_are_always_valid(embedded_backend: Any) -> None:
    for question in QUESTIONS:
        result = embedded_backend.run(chat(question, tools=TOOLS, temperature=0))
        assert result.invalid_tool_calls == []
        for call in result.tool_calls:
            jsonschema.validate(call.arguments, SCHEMAS[call.name])
        assert result.tool_calls or result.response.strip()


def test_same_seed_same_text(embedded_backend: Any) -> None:
    request = chat("Write a short poem about the sea.", temperature=1.0, seed=4242, max_tokens=40)
    first, second = embedded_backend.run(request), embedded_backend.run(request)
    assert first.response == second.response
    other = embedded_backend.run(request.model_copy(update={"seed": 4243}))
    assert other.response != first.response


def test_streaming_concatenation_equals_the_answer(embedded_backend: Any) -> None:
    request = chat("Tell me about Lyon.", temperature=0.7, seed=77, max_tokens=48)
    events = list(embedded_backend.stream(request))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 5
    assert "".join(deltas) == embedded_backend.run(request).response
    assert reduce_events(events) == embedded_backend.run(request)


async def test_async_streaming_equals_sync(embedded_backend: Any) -> None:
    request = chat("Name three French cities.", temperature=0.7, seed=5, max_tokens=32)
    events = [e async for e in embedded_backend.astream(request)]
    assert reduce_events(events) == embedded_backend.run(request)


def test_response_format_output_validates(embedded_backend: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    result = embedded_backend.run(
        chat(
            "Which city is the capital of France? Answer in JSON.",
            temperature=0,
            response_format={"type": "json_schema", "json_schema": schema},
        )
    )
    value = json.loads(result.response)
    jsonschema.validate(value, schema)


def test_int8_is_really_int8_and_smaller_than_fp32(embedded_backend: Any) -> None:
    import bitsandbytes as bnb
    import torch

    from cf_llama2.backends.local import LocalBackend

    model = embedded_backend._model
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in linears if isinstance(m, bnb.nn.Linear8bitLt)]
    assert len(quantized) == 30 * 7  # every projection of the 30 decoder layers
    assert all(isinstance(m.weight, bnb.nn.Int8Params) for m in quantized)
    assert all(m.weight.dtype == torch.int8 for m in quantized)
    fp32 = LocalBackend(quantization=None).load()
    try:
        fp32_bytes = fp32._model.get_memory_footprint()
        assert next(fp32._model.parameters()).dtype == torch.float32
    finally:
        fp32.close()
    assert model.get_memory_footprint() < 0.5 * fp32_bytes


def test_a_tiny_lora_changes_the_answer(embedded_backend: Any, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from cf_llama2.backends.local.embedded import embedded_model_dir

    base = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir()), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    with warnings.catch_warnings():
        # peft reads an attribute that this Transformers release deprecates.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        adapter = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, param in adapter.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(len(name)))
    adapter.save_pretrained(str(tmp_path / "lora"))

    request = chat("What is the capital of France?", temperature=0, max_tokens=16)
    plain = embedded_backend.run(request).response
    tuned = embedded_backend.run(request.model_copy(update={"lora": str(tmp_path / "lora")}))
    assert tuned.response != plain
    assert embedded_backend.run(request).response == plain
