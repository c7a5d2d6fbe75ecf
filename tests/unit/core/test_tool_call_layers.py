"""The stream parser's layers on their own: what each reads, emits and hands back."""

from __future__ import annotations

from cf_llama2.schema import TextDelta, ToolCallDelta
from cf_llama2.tool_calls import ToolCallStreamParser
from cf_llama2.tool_calls._calls import CallBuilder
from cf_llama2.tool_calls._candidates import JsonCandidate
from cf_llama2.tool_calls._events import EventBuffer
from cf_llama2.tool_calls._markers import MarkerScanner
from cf_llama2.tool_calls._recovery import BrokenCall
from cf_llama2.tool_calls._state import AfterCalls, Broken, JsonStep, OpenJson, ToText


def _builder(out: EventBuffer) -> CallBuilder:
    return CallBuilder(out, (), lambda: "call_1")


def _push_all(candidate: JsonCandidate, text: str) -> list[JsonStep]:
    return [step for ch in text if (step := candidate.push(ch)) is not None]


def test_the_marker_scanner_hands_a_json_start_over_with_its_lead() -> None:
    out = EventBuffer()
    markers = MarkerScanner(out)
    steps = [markers.push(ch) for ch in "Hi <tool_call>\n{"]
    assert steps[-1] == OpenJson("{", " <tool_call>\n")
    assert all(step is None for step in steps[:-1])
    assert out.drain() == [TextDelta(text="Hi")]


def test_a_bracket_that_is_not_a_marker_starts_a_list_with_the_next_char() -> None:
    markers = MarkerScanner(EventBuffer())
    assert markers.push("[") is None
    assert markers.push("{") == OpenJson("[", "", rest="{")


def test_plain_json_is_released_as_text_and_ends_the_candidate() -> None:
    out = EventBuffer()
    candidate = JsonCandidate("{", " ", _builder(out), out)
    assert _push_all(candidate, '{"a": 1}') == [ToText(clear_wrapper=True)]
    assert "".join(e.text for e in out.drain() if isinstance(e, TextDelta)) == ' {"a": 1}'


def test_a_call_goes_to_the_call_builder_and_ends_with_after_calls() -> None:
    out = EventBuffer()
    candidate = JsonCandidate("{", "", _builder(out), out)
    assert _push_all(candidate, '{"name": "f", "arguments": {"x": 1}}') == [AfterCalls()]
    assert out.drain() == [
        ToolCallDelta(index=0, id="call_1", name="f"),
        ToolCallDelta(index=0, arguments='{"x": 1}'),
    ]


def test_a_broken_call_hands_its_rest_to_the_broken_call_layer() -> None:
    out = EventBuffer()
    calls = _builder(out)
    candidate = JsonCandidate("{", "", calls, out)
    steps = _push_all(candidate, '{"name": "f", "arguments": {"a" 1')
    assert steps == [Broken(call_index=0, depth=2, in_string=False, char="1")]
    assert isinstance(steps[0], Broken)
    broken = BrokenCall(calls, steps[0])
    assert [broken.push(ch) for ch in "1}\n\n"] == [None, None, None, AfterCalls("\n\n")]
    assert calls.finish_reason("stop") == "stop"  # the call is invalid


def test_the_parser_composes_its_layers_instead_of_inheriting_them() -> None:
    assert ToolCallStreamParser.__mro__ == (ToolCallStreamParser, object)
