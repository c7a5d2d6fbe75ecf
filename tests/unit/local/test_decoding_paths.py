"""The decoding loop's paths (tool-call triggers, stop sequences, streaming) on a stand-in model
that writes a chosen text (see the ``oracle`` fixture), through the real backend code."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from cf_llama2 import ChatRequest
from cf_llama2.backends.local.batching import StepRunner
from cf_llama2.schema import TextDelta, ToolCallDelta
from cf_llama2.schema.reducer import reduce_events

CITY = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ZONE = {
    "name": "get_time",
    "description": "Time in a zone",
    "parameters": {
        "type": "object",
        "properties": {"zone": {"type": "string", "enum": ["utc", "cet"]}},
        "required": ["zone"],
    },
}


@pytest.fixture
def writes(backend: Any, oracle: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``writes(text)`` makes the backend's model write ``text``; returns the backend."""

    script: dict[str, Any] = {}
    runner = StepRunner(lambda lora: oracle(script["target"], exact=script["exact"]))
    monkeypatch.setattr(backend, "_new_runner", lambda: runner)

    def use(target: str, *, exact: bool = False) -> Any:
        script.update(target=target, exact=exact)  # for the requests sent from now on
        return backend

    return use


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 60)
    fields.setdefault("temperature", 0)
    return ChatRequest(messages=[{"role": "user", "content": "weather in Paris?"}], **fields)


def test_plain_text_streams_in_several_deltas(writes: Any) -> None:
    backend = writes("It is sunny in Paris today.")
    events = list(backend.stream(chat()))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 3
    assert "".join(texts) == "It is sunny in Paris today."
    result = reduce_events(events)
    assert result.finish_reason == "stop"


def test_auto_json_call_is_triggered_and_constrained(writes: Any) -> None:
    backend = writes(' {"name":"get_weather","arguments":{"city":"Paris"}}')
    result = backend.run(chat(tools=[CITY, ZONE]))
    assert result.response == ""
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert result.finish_reason == "tool_calls"


def test_trigger_repairs_a_call_the_model_gets_wrong(writes: Any) -> None:
    # Unknown tool, extra key, flexible whitespace: the grammar keeps the call valid anyway.
    backend = writes('{"name": "get_wether", "arguments": {"town": "Paris"}, "x": 1}')
    result = backend.run(chat(tools=[CITY, ZONE]))
    assert result.invalid_tool_calls == []
    (call,) = result.tool_calls
    schema = {"get_weather": CITY, "get_time": ZONE}[call.name]["parameters"]
    jsonschema.validate(call.arguments, schema)


def test_tool_call_tag_triggers_the_grammar(writes: Any) -> None:
    backend = writes('<tool_call>{"name":"get_time","arguments":{"zone":"cet"}}')
    result = backend.run(chat(tools=[CITY, ZONE]))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_time", {"zone": "cet"})]
    assert result.response == ""


def test_json_code_fence_triggers_the_grammar(writes: Any) -> None:
    backend = writes('```json\n{"name":"get_time","arguments":{"zone":"utc"}}\n```')
    result = backend.run(chat(tools=[CITY, ZONE]))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_time", {"zone": "utc"})]
    assert result.response == ""


def test_other_code_fences_stay_text(writes: Any) -> None:
    target = "```python\nprint(1)\n```"
    result = writes(target).run(chat(tools=[CITY]))
    assert result.response == target
    assert result.tool_calls == []


def test_a_list_of_calls_is_triggered(writes: Any) -> None:
    target = (
        '[{"name":"get_weather","arguments":{"city":"Paris"}},'
        '{"name":"get_time","arguments":{"zone":"utc"}}]'
    )
    result = writes(target).run(chat(tools=[CITY, ZONE]))
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in result.tool_calls}) == 2


def test_prose_with_tools_stays_text(writes: Any) -> None:
    result = writes("I cannot check the weather.").run(chat(tools=[CITY]))
    assert result.response == "I cannot check the weather."
    assert result.tool_calls == []
    assert result.finish_reason == "stop"


def test_prose_then_call_goes_through_the_text_parser(writes: Any) -> None:
    target = 'Sure. {"name": "get_weather", "arguments": {"city": "Rome"}}'
    result = writes(target).run(chat(tools=[CITY]))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Rome"})]
    assert result.response.strip() == "Sure."
    assert result.finish_reason == "tool_calls"


def test_tool_choice_none_never_parses_calls(writes: Any) -> None:
    target = '{"name": "get_weather", "arguments": {"city": "Rome"}}'
    result = writes(target).run(chat(tools=[CITY], tool_choice="none"))
    assert result.tool_calls == []
    assert json.loads(result.response) == json.loads(target)


def test_forced_tool_overrides_what_the_model_wants(writes: Any) -> None:
    result = writes("No, I will not call anything.").run(
        chat(tools=[CITY, ZONE], tool_choice="get_time")
    )
    (call,) = result.tool_calls
    assert call.name == "get_time"
    jsonschema.validate(call.arguments, ZONE["parameters"])


def test_a_long_value_is_closed_before_the_budget_ends(writes: Any) -> None:
    target = '{"name":"get_weather","arguments":{"city":"' + "Paris " * 40 + '"}}'
    result = writes(target).run(chat(tools=[CITY], tool_choice="get_weather", max_tokens=30))
    (call,) = result.tool_calls
    assert call.arguments["city"].startswith("Paris Paris")
    assert result.finish_reason == "tool_calls"
    assert result.usage is not None
    assert result.usage.completion_tokens <= 30


def test_forced_call_cut_by_max_tokens_is_invalid_and_says_why(writes: Any) -> None:
    target = '{"name":"get_weather","arguments":{"city":"Paris"}}'
    result = writes(target).run(chat(tools=[CITY], tool_choice="get_weather", max_tokens=4))
    assert result.finish_reason == "length"
    assert result.tool_calls == []
    (bad,) = result.invalid_tool_calls
    assert "max_tokens" in bad.error


def test_tool_call_events_carry_id_name_and_arguments(writes: Any) -> None:
    backend = writes('{"name":"get_weather","arguments":{"city":"Oslo"}}')
    events = list(backend.stream(chat(tools=[CITY], tool_choice="required")))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id
    assert deltas[0].name == "get_weather"
    assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Oslo"}


def test_stop_sequence_cuts_text_and_ends_generation(writes: Any) -> None:
    backend = writes("Paris is sunny.\nUser: and Rome?")
    result = backend.run(chat(stop=["\nUser:"]))
    assert result.response == "Paris is sunny."
    assert result.finish_reason == "stop"
    assert result.usage is not None
    full = backend.run(chat()).usage
    assert full is not None
    assert result.usage.completion_tokens < full.completion_tokens


def test_multibyte_text_streams_whole_characters(writes: Any) -> None:
    target = "Zürich ☀️ 25°C, café crème"
    events = list(writes(target, exact=True).stream(chat()))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(texts) == target
    assert all("\ufffd" not in t for t in texts)


def test_response_format_constrains_free_text(writes: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
        "required": ["city", "temp"],
    }
    result = writes('{"city":"Paris","temp":21}').run(
        chat(response_format={"type": "json_schema", "json_schema": schema})
    )
    assert json.loads(result.response) == {"city": "Paris", "temp": 21}
    loose = writes('\n {"ok":true}').run(chat(response_format={"type": "json_object"}))
    assert json.loads(loose.response) == {"ok": True}


def test_max_tokens_inside_a_character_drops_its_bytes(writes: Any, tokenizer: Any) -> None:
    target = "Lift-off 🚀🚀 now"
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    cuts = [k for k in range(1, len(ids)) if tokenizer.decode(ids[:k]).endswith("\ufffd")]
    assert cuts, "the emoji must span several tokens for this test"
    for cut in cuts:
        events = list(writes(target, exact=True).stream(chat(max_tokens=cut)))
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert "\ufffd" not in text
        assert text == tokenizer.decode(ids[:cut]).rstrip("\ufffd")
