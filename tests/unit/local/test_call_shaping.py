"""Tool-call shaping: forced calls close within their budget however nested the schema, values
stay bounded, and the schema/bias helpers do what the decoding loop relies on."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from cf_llama2 import ChatRequest
from cf_llama2.backends.local.batching import StepRunner
from cf_llama2.backends.local.call_shaping import (
    DEFAULT_SHAPING,
    PREVIOUS_SHAPING,
    close_reserve,
    copy_token_ids,
    minimal_instance,
    opener_token_ids,
    shape_parameters,
)

NESTED = {
    "name": "book_trip",
    "description": "Book a trip",
    "parameters": {
        "type": "object",
        "properties": {
            "trip": {
                "type": "object",
                "properties": {
                    "leg": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "note": {"type": "string"},
                            "stops": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["city", "note", "stops"],
                    },
                    "traveller": {"type": "string"},
                },
                "required": ["leg", "traveller"],
            },
            "count": {"type": "integer"},
        },
        "required": ["trip", "count"],
    },
}
NUMBERS = {
    "name": "plot",
    "description": "Plot values",
    "parameters": {
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": {"type": "integer"}},
            "scale": {"type": "number"},
            "label": {"type": "string"},
        },
        "required": ["points", "scale", "label"],
    },
}


@pytest.fixture
def writes(backend: Any, oracle: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    script: dict[str, Any] = {}
    runner = StepRunner(lambda lora: oracle(script["target"]))
    monkeypatch.setattr(backend, "_new_runner", lambda: runner)

    def use(target: str) -> Any:
        script["target"] = target
        return backend

    return use


def forced(tool: dict[str, Any], max_tokens: int) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": "book it"}],
        tools=[tool],
        tool_choice=tool["name"],
        max_tokens=max_tokens,
        temperature=0,
    )


@pytest.mark.parametrize("max_tokens", [56, 80, 128])
def test_a_string_that_never_closes_three_levels_deep_still_validates(
    writes: Any, max_tokens: int
) -> None:
    target = '{"name":"book_trip","arguments":{"trip":{"leg":{"city":"' + "Paris " * 300
    result = writes(target).run(forced(NESTED, max_tokens))
    assert result.invalid_tool_calls == []
    (call,) = result.tool_calls
    jsonschema.validate(call.arguments, NESTED["parameters"])
    if max_tokens >= 128:  # room to spare: the value is the model's, cut short
        assert call.arguments["trip"]["leg"]["city"].startswith("Paris")
    assert result.usage is not None
    assert result.usage.completion_tokens <= max_tokens


def test_the_same_call_did_not_close_with_the_previous_fixed_reserve(writes: Any) -> None:
    target = '{"name":"book_trip","arguments":{"trip":{"leg":{"city":"' + "Paris " * 300
    backend = writes(target)
    backend.tool_shaping = PREVIOUS_SHAPING
    result = backend.run(forced(NESTED, 64))
    assert result.tool_calls == []
    assert len(result.invalid_tool_calls) == 1


def test_runaway_numbers_lists_and_padded_strings_are_bounded(writes: Any) -> None:
    counting = ",".join(str(i) for i in range(1, 200))
    target = (
        '{"name":"plot","arguments":{"points":['
        + counting
        + '],"scale":'
        + "9" * 120
        + ',"label":"   '
        + "word " * 100
    )
    result = writes(target).run(forced(NUMBERS, 200))
    assert result.invalid_tool_calls == []
    (call,) = result.tool_calls
    args = call.arguments
    jsonschema.validate(args, NUMBERS["parameters"])
    assert len(args["points"]) <= DEFAULT_SHAPING.max_items
    assert abs(args["scale"]) <= DEFAULT_SHAPING.max_number
    assert args["label"] == args["label"].strip()
    assert len(args["label"]) <= DEFAULT_SHAPING.max_string


def test_shaping_puts_required_first_and_bounds_plain_values_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "opt": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "need": {"type": "integer"},
        },
        "required": ["need"],
    }
    shaped = shape_parameters(schema, DEFAULT_SHAPING)
    assert list(shaped["properties"]) == ["need", "opt", "unit"]
    assert shaped["properties"]["opt"]["maxLength"] == DEFAULT_SHAPING.max_string
    assert shaped["properties"]["unit"] == {"type": "string", "enum": ["c", "f"]}
    assert shaped["properties"]["need"]["maximum"] == DEFAULT_SHAPING.max_number
    assert list(schema["properties"]) == ["opt", "unit", "need"]  # the input is not changed
    assert shape_parameters(schema, PREVIOUS_SHAPING) == schema


def test_close_reserve_grows_with_the_required_nesting(tokenizer: Any) -> None:
    flat = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert minimal_instance(NESTED["parameters"]) == {
        "trip": {"leg": {"city": "x", "note": "x", "stops": []}, "traveller": "x"},
        "count": 0,
    }
    small = close_reserve(tokenizer, [flat], DEFAULT_SHAPING)
    big = close_reserve(tokenizer, [flat, NESTED["parameters"]], DEFAULT_SHAPING)
    assert small == DEFAULT_SHAPING.base_reserve < big
    assert close_reserve(tokenizer, [NESTED["parameters"]], PREVIOUS_SHAPING) == 12


def test_copy_and_opener_tokens(tokenizer: Any) -> None:
    ids = copy_token_ids(tokenizer, ["Weather in Berkeley, CA?"])
    for form in ("Berkeley", " Berkeley"):
        assert set(tokenizer(form, add_special_tokens=False)["input_ids"]) <= set(ids)
    openers = opener_token_ids(tokenizer)
    assert tokenizer.convert_tokens_to_ids("{") in openers
    assert all(tokenizer.decode([i]).lstrip().startswith("{") for i in openers)


def test_the_call_bias_applies_to_the_first_call_not_to_the_answer_after_a_result(
    tiny_model: Any, tokenizer: Any
) -> None:
    """After a tool has answered, the model speaks unbiased: the bias made agents call again."""
    from cf_llama2.backends.local.planning import build_plan

    weather = {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    answered = [
        *asked,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    ]

    def openers(messages: list[dict[str, Any]]) -> list[int]:
        request = ChatRequest(messages=messages, tools=[weather], max_tokens=16)
        plan = build_plan(
            request,
            model=tiny_model,
            tokenizer=tokenizer,
            context_window=1024,
            model_name="tiny",
        )
        return plan.opener_ids

    assert openers(asked), "the first turn leans towards a call"
    assert openers(answered) == [], "the answer to a tool result is not pushed to call again"


FREE_FORM = {
    "name": "requests_get",
    "description": "Send a GET request",
    "parameters": {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "params": {"type": "object", "description": "query parameters"},
            "tags": {"type": "array"},
        },
        "required": ["url", "params"],
    },
}


def test_a_free_form_object_cannot_nest_without_end(writes: Any) -> None:
    """``{"type": "object"}`` with no properties held any value, so a forced call once wrote
    ``{"type": {"type": {...`` to the token limit; its values are now plain and bounded."""
    target = '{"name":"requests_get","arguments":{"url":"http://x","params":' + '{"type":' * 200
    result = writes(target).run(forced(FREE_FORM, 96))
    assert result.invalid_tool_calls == []
    (call,) = result.tool_calls
    jsonschema.validate(call.arguments, FREE_FORM["parameters"])
    values = list(call.arguments["params"].values())
    assert all(not isinstance(v, (dict, list)) for v in values)


def test_free_form_values_are_one_level_of_bounded_plain_values() -> None:
    shaped = shape_parameters(FREE_FORM["parameters"], DEFAULT_SHAPING)["properties"]
    for free in (shaped["params"]["additionalProperties"], shaped["tags"]["items"]):
        kinds = [option["type"] for option in free["anyOf"]]
        assert kinds == ["string", "number", "boolean", "null"]
        assert free["anyOf"][0]["maxLength"] == DEFAULT_SHAPING.max_string
    typed = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert shape_parameters(typed, DEFAULT_SHAPING)["additionalProperties"] is False
    closed = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert shape_parameters(closed, DEFAULT_SHAPING)["additionalProperties"]["type"] == "integer"
    assert shape_parameters(FREE_FORM["parameters"], PREVIOUS_SHAPING) == FREE_FORM["parameters"]


def test_a_typed_object_takes_only_its_declared_keys(writes: Any) -> None:
    """An undeclared key was open to any value: a forced call nested under one to the limit."""
    typed = {
        "name": "requests_get",
        "description": "Send a GET request",
        "parameters": {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "params": {"type": "object", "properties": {"filter": {"type": "string"}}},
            },
            "required": ["url", "params"],
        },
    }
    target = '{"name":"requests_get","arguments":{"url":"http://x","params":' + '{"type":' * 200
    result = writes(target).run(forced(typed, 96))
    assert result.invalid_tool_calls == []
    (call,) = result.tool_calls
    assert set(call.arguments["params"]) <= {"filter"}


def test_a_copied_value_is_not_penalised_for_appearing_in_the_prompt(
    backend: Any, tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's repetition penalty counts the prompt's tokens too; inside a call it would
    steer a value off the very number the user wrote (measured: LangChain's standard
    ``magic_function(3)`` test, with ``repetition_penalty=1.2``, got ``input: 12``)."""
    import dataclasses

    import torch

    three, seven = (tokenizer.convert_tokens_to_ids(d) for d in ("3", "7"))

    def step(new_ids: list[int], cache: Any) -> tuple[Any, Any]:
        scores = torch.zeros((1, len(tokenizer)))
        scores[0, three], scores[0, seven] = 2.0, 1.9  # "3" ahead, until penalised
        return scores, object()

    monkeypatch.setattr(backend, "_new_runner", lambda: StepRunner(lambda lora: step))
    tool = {
        "name": "magic_function",
        "description": "Applies a magic function to an input.",
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "integer"}},
            "required": ["input"],
        },
    }
    request = ChatRequest(
        messages=[{"role": "user", "content": "What is magic_function(3)?"}],
        tools=[tool],
        tool_choice="magic_function",
        max_tokens=24,
        temperature=0,
        repetition_penalty=2.0,
    )
    steered = backend.run(request)
    assert steered.tool_calls[0].arguments["input"] == 3
    backend.tool_shaping = dataclasses.replace(DEFAULT_SHAPING, copy_bias=0.0)
    unsteered = backend.run(request)
    assert str(unsteered.tool_calls[0].arguments["input"]).startswith("7")


def test_an_enum_on_an_array_of_plain_values_applies_to_its_items(writes: Any) -> None:
    """A real tool's schema (BFCL live_simple_71): taken literally no array matches the enum,
    and the forced call was refused as an unsatisfiable schema."""
    tool = {
        "name": "extract",
        "description": "Extract",
        "parameters": {
            "type": "object",
            "properties": {
                "metrics": {
                    "type": "array",
                    "items": {"type": "string"},
                    "enum": ["trust", "buzz"],
                }
            },
            "required": ["metrics"],
        },
    }
    result = writes('{"name":"extract","arguments":{"metrics":["buzz","trust"]}}').run(
        forced(tool, 64)
    )
    assert result.tool_calls[0].arguments == {"metrics": ["buzz", "trust"]}


def test_a_tight_budget_does_not_write_closing_characters_into_a_string(writes: Any) -> None:
    """Measured: a forced ``get_weather`` with ``max_tokens=24`` gave ``{"city": "}"}``: near
    the budget's end the closers were favoured inside the (still empty) string, where "}" is
    text and the grammar does not let an empty string end yet."""
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    for budget in (20, 24, 32):
        result = writes('{"name":"get_weather","arguments":{"city":"Paris"}}').run(
            forced(tool, budget)
        )
        assert result.tool_calls[0].arguments == {"city": "Paris"}, budget
