"""Tool calls in model text: ``parse_text`` and the incremental ``ToolCallStreamParser``."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from cf_llama2.schema import (
    ChatResult,
    EndEvent,
    FinishReason,
    InvalidToolCall,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from cf_llama2.schema.reducer import reduce_events
from cf_llama2.tool_calls import (
    ToolCallStreamParser,
    parse_text,
)
from cf_llama2.tools import Tool

TOOLS = [
    Tool(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    ),
    Tool(name="get_time"),
]

CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
ID_RE = re.compile(r"^call_[0-9a-f]{24}$")


def counter_ids() -> Callable[[], str]:
    n = itertools.count()
    return lambda: f"id{next(n)}"


def stream(
    chunks: Iterable[str],
    tools: Sequence[Tool] = (),
    finish_reason: FinishReason = "stop",
) -> tuple[list[TextDelta | ToolCallDelta], FinishReason]:
    parser = ToolCallStreamParser(tools, new_id=counter_ids())
    events: list[TextDelta | ToolCallDelta] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    tail, reason = parser.finish(finish_reason)
    return events + tail, reason


def reduce_stream(
    chunks: Iterable[str], tools: Sequence[Tool] = (), finish_reason: FinishReason = "stop"
) -> ChatResult:
    events, reason = stream(chunks, tools, finish_reason)
    return reduce_events([*events, EndEvent(finish_reason=reason)])


def summary(call: ToolCall | InvalidToolCall) -> tuple[Any, ...]:
    if isinstance(call, ToolCall):
        return ("ok", call.name, call.arguments)
    return ("invalid", call.name, call.arguments, call.error)


def result_summary(result: ChatResult) -> tuple[str, list[tuple[Any, ...]]]:
    calls: list[ToolCall | InvalidToolCall] = [*result.tool_calls, *result.invalid_tool_calls]
    order = {c.id: i for i, c in enumerate(calls)}
    calls.sort(key=lambda c: int(c.id[2:]) if c.id.startswith("id") else order[c.id])
    return result.response, [summary(c) for c in calls]


def parsed_summary(text: str, tools: Sequence[Tool] = ()) -> tuple[str, list[tuple[Any, ...]]]:
    rest, calls = parse_text(text, tools)
    return rest, [summary(c) for c in calls]


# ---------------------------------------------------------------------------------------------
# ids


def test_parse_text_gives_fresh_ids_for_identical_calls() -> None:
    _, first = parse_text(CALL)
    _, second = parse_text(CALL)
    assert ID_RE.match(first[0].id)
    assert first[0].id != second[0].id


# ---------------------------------------------------------------------------------------------
# parse_text: the formats

WEATHER: tuple[Any, ...] = ("ok", "get_weather", {"city": "Paris"})
TIME: tuple[Any, ...] = ("ok", "get_time", {})

FORMATS: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    ("plain text", "The weather is nice.", []),
    ("bare object", CALL, [WEATHER]),
    ("padded object", f"  \n{CALL}\n ", [WEATHER]),
    ("parameters key", '{"name": "get_weather", "parameters": {"city": "Paris"}}', [WEATHER]),
    ("function key", '{"function": "get_weather", "arguments": {"city": "Paris"}}', [WEATHER]),
    ("tool/tool_input", '{"tool": "get_weather", "tool_input": {"city": "Paris"}}', [WEATHER]),
    (
        "string arguments",
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        [WEATHER],
    ),
    ("null arguments", '{"name": "get_time", "arguments": null}', [TIME]),
    ("name only", '{"name": "get_time"}', [TIME]),
    (
        "id and type keys",
        '{"id": "x", "type": "function", "name": "get_time", "arguments": {}}',
        [TIME],
    ),
    ("arguments first", '{"arguments": {"city": "Paris"}, "name": "get_weather"}', [WEATHER]),
    (
        "openai shape",
        '{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}',
        [WEATHER],
    ),
    ("list", f'[{CALL}, {{"name": "get_time", "arguments": {{}}}}]', [WEATHER, TIME]),
    ("two objects", f'{CALL}\n{{"name": "get_time", "arguments": {{}}}}', [WEATHER, TIME]),
    ("json fence", f"```json\n{CALL}\n```", [WEATHER]),
    ("bare fence", f"```\n{CALL}\n```", [WEATHER]),
    ("fence with two calls", f'```json\n{CALL}\n{{"name": "get_time"}}\n```', [WEATHER, TIME]),
    ("tool_call tags", f"<tool_call>\n{CALL}\n</tool_call>", [WEATHER]),
    (
        "two tool_call tags",
        f'<tool_call>{CALL}</tool_call>\n<tool_call>{{"name": "get_time"}}</tool_call>',
        [WEATHER, TIME],
    ),
    ("TOOL_CALLS marker", f"[TOOL_CALLS] [{CALL}]", [WEATHER]),
    (
        "pretty printed",
        '{\n  "name": "get_weather",\n  "arguments": {\n    "city": "Paris"\n  }\n}',
        [WEATHER],
    ),
    ("trailing commas", '{"name": "get_weather", "arguments": {"city": "Paris",},}', [WEATHER]),
    (
        "unicode",
        '{"name": "get_weather", "arguments": {"city": "Z\\u00fcrich \u00e9"}}',
        [("ok", "get_weather", {"city": "Z\u00fcrich \u00e9"})],
    ),
]


@pytest.mark.parametrize(("label", "text", "calls"), FORMATS, ids=[f[0] for f in FORMATS])
def test_formats(label: str, text: str, calls: list[tuple[Any, ...]]) -> None:
    rest, found = parsed_summary(text, TOOLS)
    assert found == calls
    if calls:
        assert rest == ""


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        (f"Sure! Here is the call: {CALL}", "Sure! Here is the call:"),
        (
            f"Sure! Here is the call:\n```json\n{CALL}\n```\nLet me know.",
            "Sure! Here is the call:\nLet me know.",
        ),
        (f"A {CALL} B", "A B"),
        (f"{CALL}\n\nI called the tool.", "I called the tool."),
        (f"<tool_call>{CALL}</tool_call> done", "done"),
    ],
)
def test_text_around_calls(text: str, rest: str) -> None:
    got_rest, calls = parsed_summary(text, TOOLS)
    assert calls == [WEATHER]
    assert got_rest == rest


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Alice", "age": 30}',
        '{"a": {"name": "get_weather", "arguments": {}}}',
        '{"city": "Paris"}',
        "{}",
        "[]",
        "[1, 2, 3]",
        '[{"a": 1}, {"name": "get_weather", "arguments": {}}]',
        "Use {x} in the template, and [this](link) and `code` and <b>bold</b>.",
        "```python\nprint({'a': 1})\n```",
        '```\n{"a": 1}\n```',
        "<tool_call is a tag name>",
        "[TOOL] and [TOOL_CALL",
        "{'name': 'get_weather', 'arguments': {}}",
        "Text ending with an open brace {",
        'Text ending inside JSON {"a": [1, 2',
        "``",
    ],
)
def test_non_calls_stay_text_unchanged(text: str) -> None:
    assert parse_text(text, TOOLS) == (text, [])


def test_unknown_tool_is_invalid_with_known_names() -> None:
    rest, calls = parsed_summary('{"name": "nope", "arguments": {"a": 1}}', TOOLS)
    assert rest == ""
    assert calls == [
        ("invalid", "nope", '{"a": 1}', "unknown tool 'nope'; known: get_weather, get_time")
    ]


def test_without_tools_any_name_is_accepted() -> None:
    assert parsed_summary('{"name": "anything", "arguments": {}}') == (
        "",
        [("ok", "anything", {})],
    )


@pytest.mark.parametrize(
    ("text", "error_part", "rest"),
    [
        ('{"name": "get_weather", "arguments": [1, 2]}', "must be a JSON object; got list", ""),
        ('{"name": "get_weather", "arguments": "not json"}', "not valid JSON", ""),
        ('{"name": "get_weather", "arguments": {"city": "Paris"]}', "expected ',' or '}'", ""),
        ('{"name": "get_weather" "arguments": {}} Done.', "expected ',' or '}'", "Done."),
        ('{"name": "get_weather", "arguments": {"city": "Pa\nris"}}', "control character", ""),
        ('{"name": "get_weather", "arguments": {"city": Paris}}', "expected a JSON value", ""),
        ('{"name": 5, "arguments": {}}', "must be a non-empty string", ""),
    ],
)
def test_broken_calls_are_invalid_with_the_reason(text: str, error_part: str, rest: str) -> None:
    got_rest, calls = parse_text(text, TOOLS)
    assert got_rest == rest
    (call,) = calls
    assert isinstance(call, InvalidToolCall)
    assert error_part in call.error
    assert call.arguments, "the raw text is kept"


def test_broken_call_keeps_its_rest_until_a_blank_line() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "Paris"]\nstill broken\n\nNext paragraph.'
    rest, (call,) = parse_text(text)
    assert rest == "Next paragraph."
    assert isinstance(call, InvalidToolCall)
    assert call.arguments == '{"city": "Paris"]\nstill broken'


def test_broken_call_in_tags_keeps_the_closing_tag_out_of_the_text() -> None:
    text = '<tool_call>\n{"name": "get_time", "arguments": {"a": 1]}\n</tool_call>\nAfter.'
    rest, (call,) = parse_text(text, TOOLS)
    assert rest == "After."
    assert isinstance(call, InvalidToolCall)
    assert call.name == "get_time"
    assert call.arguments == '{"a": 1]}'


LLAMA2_ANSWER = (
    "  Sure, I can help you with that! To get the weather in Paris, I will call the "
    '`get_weather` function with the `city` parameter set to "Paris".\n\n'
    '```\n{\n"name": "get_weather",\n"arguments": {\n"city": "Paris"\n}\n}\n```\n\n'
    "Please wait while I retrieve the weather information for you."
)


def test_realistic_llama2_answer() -> None:
    rest, calls = parsed_summary(LLAMA2_ANSWER, TOOLS)
    assert calls == [WEATHER]
    assert rest == (
        "  Sure, I can help you with that! To get the weather in Paris, I will call the "
        '`get_weather` function with the `city` parameter set to "Paris".\n\n'
        "Please wait while I retrieve the weather information for you."
    )


def test_list_item_that_is_not_a_call_is_invalid() -> None:
    text = f'[{CALL}, 5, {{"a": 1}}, {{"name": "get_time"}}]'
    rest, calls = parse_text(text, TOOLS)
    assert rest == ""
    assert [summary(c)[:2] for c in calls] == [
        ("ok", "get_weather"),
        ("invalid", None),
        ("invalid", None),
        ("ok", "get_time"),
    ]
    assert isinstance(calls[1], InvalidToolCall)
    assert calls[1].error == "item 2 of the tool-call list is not a tool call object"
    assert calls[1].arguments == "5"
    assert isinstance(calls[2], InvalidToolCall)
    assert calls[2].arguments == '{"a": 1}'


def test_cut_off_call_in_text_is_invalid() -> None:
    rest, (call,) = parse_text('{"name": "get_weather", "arguments": {"city": "Pa')
    assert rest == ""
    assert isinstance(call, InvalidToolCall)
    assert call.name == "get_weather"
    assert "ended before its JSON was complete" in call.error
    assert call.arguments == '{"city": "Pa'


def test_complete_arguments_without_final_brace_are_a_call() -> None:
    assert parsed_summary('{"name": "get_weather", "arguments": {"city": "Paris"}') == (
        "",
        [WEATHER],
    )


# ---------------------------------------------------------------------------------------------
# The stream parser: what is emitted when


def texts(events: Iterable[TextDelta | ToolCallDelta]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_text_streams_immediately_holding_only_trailing_whitespace() -> None:
    parser = ToolCallStreamParser()
    assert texts(parser.feed("Hello wor")) == "Hello wor"
    assert texts(parser.feed("ld, how ")) == "ld, how"
    assert texts(parser.feed("are you?")) == " are you?"
    tail, reason = parser.finish("stop")
    assert tail == []
    assert reason == "stop"


@pytest.mark.parametrize("held", ["{", '{"na', "`", "``", "```js", "<tool_c", "[", "[TOOL_C"])
def test_possible_call_starts_are_held_back(held: str) -> None:
    parser = ToolCallStreamParser()
    assert texts(parser.feed("Text " + held)) == "Text"
    tail, _ = parser.finish("stop")
    assert texts(tail) == " " + held


def test_non_call_json_is_released_as_soon_as_its_first_key_decides() -> None:
    parser = ToolCallStreamParser()
    assert texts(parser.feed('Data: {"city": "Par')) == 'Data: {"city": "Par'
    assert texts(parser.feed('is"} ok')) == 'is"} ok'


def test_call_deltas_stream_name_then_argument_fragments() -> None:
    parser = ToolCallStreamParser(TOOLS, new_id=counter_ids())
    first = parser.feed('Sure. {"name": "get_weather", "arg')
    assert first == [TextDelta(text="Sure.")]
    second = parser.feed('uments": {"city": "Pa')
    assert second == [
        ToolCallDelta(index=0, id="id0", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city": "Pa'),
    ]
    third = parser.feed('ris"}}')
    assert third == [ToolCallDelta(index=0, arguments='ris"}')]
    tail, reason = parser.finish("stop")
    assert tail == []
    assert reason == "tool_calls"


def test_unknown_tool_is_flagged_on_the_first_delta() -> None:
    parser = ToolCallStreamParser(TOOLS, new_id=counter_ids())
    events = parser.feed('{"name": "nope", "arguments": {"a"')
    assert events[0] == ToolCallDelta(
        index=0, id="id0", name="nope", error="unknown tool 'nope'; known: get_weather, get_time"
    )
    events += parser.feed(": 1}}")
    tail, reason = parser.finish("stop")
    assert reason == "stop"
    assert "".join(e.arguments for e in events + tail if isinstance(e, ToolCallDelta)) == (
        '{"a": 1}'
    )


def test_trailing_comma_is_held_until_the_next_token() -> None:
    parser = ToolCallStreamParser(new_id=counter_ids())
    assert parser.feed('{"name": "f", "arguments": {"a": 1') == [
        ToolCallDelta(index=0, id="id0", name="f"),
        ToolCallDelta(index=0, arguments='{"a": 1'),
    ]
    assert parser.feed(", ") == []  # a trailing comma or the next member: wait
    assert parser.feed("}}") == [ToolCallDelta(index=0, arguments=" }")]
    other = ToolCallStreamParser(new_id=counter_ids())
    other.feed('{"name": "f", "arguments": {"a": 1')
    assert other.feed(', "b') == [ToolCallDelta(index=0, arguments=', "b')]


def test_argument_fragments_concatenate_to_the_exact_json() -> None:
    args = '{"city": "Paris", "days": [1, 2.5e3, -3], "opts": {"a": null, "b": true}, "s": "x\\"}"}'
    text = f'{{"name": "get_weather", "arguments": {args}}}'
    for size in (1, 2, 3, 7):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        events, _ = stream(chunks)
        frags = [e.arguments for e in events if isinstance(e, ToolCallDelta)]
        assert "".join(frags) == args
        assert len([f for f in frags if f]) > 1 or size > len(args)


def test_partial_json_never_leaks_into_text() -> None:
    text = f"Intro. ```json\n{CALL}\n```"
    for cut in range(len(text) + 1):
        parser = ToolCallStreamParser()
        shown = texts(parser.feed(text[:cut]))
        assert shown == "Intro."[: max(0, min(cut, 6))], (cut, shown)


def test_ids_are_generated_once_per_call_and_shared_with_the_result() -> None:
    parser = ToolCallStreamParser()
    events = parser.feed(f'[{CALL}, {{"name": "get_time"}}]')
    tail, reason = parser.finish("stop")
    ids = [e.id for e in events + tail if isinstance(e, ToolCallDelta) and e.id]
    assert len(ids) == 2
    assert all(ID_RE.match(i) for i in ids)
    result = reduce_events([*events, *tail, EndEvent(finish_reason=reason)])
    assert [c.id for c in result.tool_calls] == ids


# ---------------------------------------------------------------------------------------------
# finish(): cut-off calls and the final finish reason


def test_cut_off_call_with_length() -> None:
    result = reduce_stream(['Ok {"name": "get_weather", "arguments": {"ci'], finish_reason="length")
    assert result.finish_reason == "length"
    assert result.response == "Ok"
    assert result.tool_calls == []
    (bad,) = result.invalid_tool_calls
    assert bad.name == "get_weather"
    assert bad.arguments == '{"ci'
    assert "max_tokens" in bad.error
    assert "finish_reason='length'" in bad.error


def test_cut_off_before_arguments_with_length() -> None:
    result = reduce_stream(['{"name": "get_weather", "argu'], finish_reason="length")
    assert result.finish_reason == "length"
    (bad,) = result.invalid_tool_calls
    assert bad.name == "get_weather"
    assert "max_tokens" in bad.error


def test_cut_off_call_with_stop_is_invalid_and_reason_stays_stop() -> None:
    result = reduce_stream(['{"name": "get_weather", "arguments": {"ci'], finish_reason="stop")
    assert result.finish_reason == "stop"
    (bad,) = result.invalid_tool_calls
    assert "ended before its JSON was complete" in bad.error


def test_complete_call_then_cut_off_call() -> None:
    text = f'[{CALL}, {{"name": "get_time", "arguments": {{"tz": "U'
    by_length = reduce_stream([text], finish_reason="length")
    assert by_length.finish_reason == "length"
    assert [c.name for c in by_length.tool_calls] == ["get_weather"]
    assert [c.name for c in by_length.invalid_tool_calls] == ["get_time"]
    by_stop = reduce_stream([text], finish_reason="stop")
    assert by_stop.finish_reason == "tool_calls"


def test_text_cut_by_length_keeps_length() -> None:
    result = reduce_stream(["The answer is"], finish_reason="length")
    assert result.finish_reason == "length"
    assert result.response == "The answer is"


def test_finish_reason_tool_calls_needs_valid_calls() -> None:
    assert stream(["just text"], finish_reason="tool_calls")[1] == "stop"
    assert stream(['{"name": "nope"}'], TOOLS)[1] == "stop"
    assert stream([CALL], TOOLS)[1] == "tool_calls"
    assert stream([CALL], TOOLS, finish_reason="length")[1] == "tool_calls"


def test_feed_after_finish_raises() -> None:
    parser = ToolCallStreamParser()
    parser.finish("stop")
    with pytest.raises(RuntimeError, match="after finish"):
        parser.feed("x")
    with pytest.raises(RuntimeError, match="twice"):
        parser.finish("stop")


def test_reducer_honours_the_parser_error() -> None:
    result = reduce_events(
        [
            ToolCallDelta(index=0, id="a", name="f", arguments="{}"),
            ToolCallDelta(index=0, error="unknown tool 'f'; known: g"),
            EndEvent(finish_reason="stop"),
        ]
    )
    assert result.tool_calls == []
    assert result.invalid_tool_calls == [
        InvalidToolCall(id="a", name="f", arguments="{}", error="unknown tool 'f'; known: g")
    ]


# ---------------------------------------------------------------------------------------------
# Property: any split of the text, streamed then reduced, equals parse_text of the whole.

SAMPLES = [text for _, text, _ in FORMATS] + [
    f"Sure! Here is the call: {CALL} Done.",
    f"Sure! Here is the call:\n```json\n{CALL}\n```\nLet me know.",
    '{"name": "nope", "arguments": {"a": [1, {"b": "}"}]}}',
    '{"name": "get_weather", "arguments": {"city": "Paris"]}\nmore\n\nNext.',
    '{"name": "get_weather" "arguments": {}} Done.',
    f'[{CALL}, 5, {{"a": 1}}] tail',
    '{"name": "Alice", "age": 30} and {"name": "get_time"}',
    "Use {x} and [1, 2] and `code` and <b> and [TOOL] ``` and ``",
    "```python\nx = {'a': 1}\n```\n" + CALL,
    '{"name": "get_weather", "arguments": {"city": "Pa',
    '{"name": "get_weather", "arguments": {"a": [1, 2,], "b": "x",}, }',
    '\u00e9t\u00e9 {"name": "get_time"} \u2014 fin',
    '<tool_call>\n{"name": "get_time", "arguments": {"a": 1]}\n</tool_call>\nAfter.',
    '```json\n{"name": "f", "arguments": {"a": 1} "x"}\n```\nAfter ```json\n{"a":1}\n```',
    '[TOOL_CALLS]{"name": "f"} then [TOOL_CALLS] hello <tool_call>hi</tool_call>',
    '{"name": "f", "arguments": {"n": 01}} {"name": "f", "arguments": {"s": "a\\u00e9\\"}"}}',
    LLAMA2_ANSWER,
]


def splits(text: str, rng: random.Random) -> Iterable[list[str]]:
    yield [text]
    yield list(text)
    for i in range(len(text) + 1):
        yield [text[:i], text[i:]]
    if len(text) <= 60:
        for i in range(len(text) + 1):
            for j in range(i, len(text) + 1):
                yield [text[:i], text[i:j], text[j:]]
    for _ in range(40):
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(1, 8))))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("tools", [(), tuple(TOOLS)], ids=["no-tools", "tools"])
def test_any_split_equals_parse_text(text: str, tools: Sequence[Tool]) -> None:
    expected = parsed_summary(text, tools)
    rng = random.Random(text)
    for chunks in splits(text, rng):
        got = result_summary(reduce_stream(chunks, tools))
        assert got == expected, chunks


def test_release_whitespace_emits_held_spaces_before_structured_calls() -> None:
    parser = ToolCallStreamParser()
    events = parser.feed("Checking both. ")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Checking both."
    assert parser.release_whitespace() == [TextDelta(text=" ")]
    assert parser.release_whitespace() == []
    # A held marker prefix is not released: it may still become a call.
    parser = ToolCallStreamParser()
    parser.feed("Sure <tool_c")
    assert parser.release_whitespace() == []
