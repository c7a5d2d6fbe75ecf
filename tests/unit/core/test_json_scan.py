"""The incremental JSON scanner behind the tool-call stream parser."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2.tool_calls._json_scan import JsonScanner


def scan(text: str, *, finish: bool = True) -> list[tuple[Any, ...]]:
    scanner = JsonScanner()
    events: list[tuple[Any, ...]] = []
    for ch in text:
        events += scanner.push(ch)
    if finish:
        events += scanner.finish()
    return events


def test_starts_keys_and_ends_with_offsets() -> None:
    assert scan('{"a": "x", "b": [true]}') == [
        ("start", 0, "{"),
        ("key", 1, "a"),
        ("start", 1, '"'),
        ("end", 1, 9),
        ("key", 1, "b"),
        ("start", 1, "["),
        ("start", 2, "t"),
        ("end", 2, 21),
        ("end", 1, 22),
        ("end", 0, 23),
    ]


def test_trailing_commas_are_reported_as_drops() -> None:
    events = scan('{"a": [1,],}')
    assert ("drop", 8) in events
    assert ("drop", 10) in events
    assert events[-1] == ("end", 0, 12)


def test_escaped_keys_are_decoded() -> None:
    assert ("key", 1, 'a"\u00e9') in scan('{"a\\"\\u00e9": 1}')


def test_a_number_at_the_end_of_input_ends_on_finish() -> None:
    assert scan("12", finish=False) == [("start", 0, "1")]
    assert scan("12") == [("start", 0, "1"), ("end", 0, 2)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a" 1}', "expected ':' after a key, got '1'"),
        ("{'a': 1}", 'expected a double-quoted key, got "\'"'),
        ('{"a": x}', "expected a JSON value, got 'x'"),
        ('{"a": 1 "b"}', "expected ',' or '}', got '\"'"),
        ('{"a": "x\ny"}', "raw control character '\\n' in a string (escape it)"),
        ('{"a": "\\q"}', "invalid escape '\\q' in a string"),
        ('{"a": "\\u12g4"}', "invalid \\u escape: 'g' is not a hex digit"),
        ('{"a": tru}', "invalid literal 'tru' (JSON has true, false, null and numbers)"),
        ("{} x", "text after the end of the JSON value"),
    ],
)
def test_errors_name_the_problem_and_kill_the_scanner(text: str, message: str) -> None:
    scanner = JsonScanner()
    events: list[tuple[Any, ...]] = []
    for ch in text:
        events += scanner.push(ch)
        if events and events[-1][0] == "error":
            break
    assert events[-1] == ("error", message)
    assert scanner.state == "dead"
    assert scanner.push("}")[-1] == ("error", "text after the end of the JSON value")
