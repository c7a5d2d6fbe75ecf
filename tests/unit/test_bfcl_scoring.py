"""The tool-calling benchmark's BFCL pieces: schema conversion, loading and AST scoring.

Hand-written cases in BFCL's format (no benchmark data is copied here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks._bfcl import Case, load_cases, runaway, score_call, to_json_schema
from benchmarks.tool_calling import _first_call

FUNCTION = {
    "name": "maps.route",
    "description": "Route between two places",
    "parameters": {
        "type": "dict",
        "properties": {
            "origin": {"type": "string"},
            "stops": {"type": "tuple", "items": {"type": "string"}},
            "speed": {"type": "float"},
            "extra": {"type": "any"},
            "options": {"type": "dict", "properties": {"avoid": {"type": "string"}}},
        },
        "required": ["origin"],
    },
}
TRUTH = {"maps.route": {"origin": ["New York, NY", "NYC"], "speed": [50.0, ""], "stops": [""]}}


def test_bfcl_types_become_json_schema() -> None:
    schema = to_json_schema(FUNCTION["parameters"])
    assert schema["type"] == "object"
    props = schema["properties"]
    assert props["stops"] == {"type": "array", "items": {"type": "string"}}
    assert props["speed"] == {"type": "number"}
    assert props["extra"] == {}
    assert props["options"]["type"] == "object"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    cases = [
        {"id": f"live_simple_{i}", "question": [[{"role": "user", "content": f"q{i}"}]]}
        | {"function": [FUNCTION]}
        for i in range(5)
    ]
    (tmp_path / "BFCL_v4_live_simple.json").write_text("\n".join(map(json.dumps, cases)))
    answers = [{"id": c["id"], "ground_truth": [TRUTH]} for c in cases]
    (tmp_path / "possible_answer_BFCL_v4_live_simple.json").write_text(
        "\n".join(map(json.dumps, answers))
    )
    return tmp_path


def test_loading_renames_dotted_tools_and_samples_with_a_fixed_seed(data_dir: Path) -> None:
    every = load_cases(data_dir, "simple", None, 0)
    assert len(every) == 5
    assert every[0].tools[0]["function"]["name"] == "maps_route"
    assert every[0].names == {"maps_route": "maps.route"}
    first = [c.id for c in load_cases(data_dir, "simple", 3, 7)]
    assert first == [c.id for c in load_cases(data_dir, "simple", 3, 7)]
    assert len(first) == 3
    with pytest.raises(SystemExit, match="multiple"):
        load_cases(data_dir, "multiple", None, 0)


def _case(data_dir: Path) -> Case:
    return load_cases(data_dir, "simple", None, 0)[0]


@pytest.mark.parametrize(
    ("args", "right", "reason"),
    [
        ({"origin": "new york NY"}, True, ""),
        ({"origin": "NYC", "speed": 50}, True, ""),
        ({"origin": "NYC", "speed": 51.0}, False, "wrong value speed"),
        ({"origin": "Boston"}, False, "wrong value origin"),
        ({}, False, "missing required origin"),
        ({"origin": "NYC", "color": "red"}, False, "unknown parameter color"),
        ({"origin": "NYC", "stops": ["a"]}, False, "wrong value stops"),
    ],
)
def test_scoring_follows_the_ast_checker(
    data_dir: Path, args: dict[str, Any], right: bool, reason: str
) -> None:
    got = score_call(_case(data_dir), [("maps_route", args)])
    assert got[0] is right
    assert got[1].startswith(reason)


def test_wrong_function_or_call_count_is_wrong_and_irrelevance_wants_none(
    data_dir: Path,
) -> None:
    case = _case(data_dir)
    assert score_call(case, [("other", {"origin": "NYC"})]) == (False, "wrong function other")
    assert score_call(case, [])[0] is False
    assert score_call(case, [("maps_route", '{"origin": "NY')])[0] is False
    case.category = "irrelevance"
    assert score_call(case, []) == (True, "")
    assert score_call(case, [("maps_route", {})])[0] is False


def test_runaway_values_and_calls_parsed_from_text() -> None:
    assert runaway({"n": 10**20})
    assert runaway({"xs": list(range(60))})
    assert runaway({"s": "word " * 50})
    assert not runaway({"n": 12.5, "s": "Paris", "xs": [1, 2], "b": True})
    text = 'Sure! {"name": "f", "arguments": {"a": 1}} and more'
    assert _first_call(text) == [("f", {"a": 1})]
    assert _first_call("no call here {not json}") == []


def test_grouped_plot_renders(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = {
        "id": "acc",
        "plots": [
            {
                "kind": "grouped",
                "file": "acc.png",
                "groups": ["simple", "multiple"],
                "series": [
                    {"label": "a", "values": [10.0, 20.0]},
                    {"label": "b", "values": [0, 5]},
                ],
            }
        ],
    }
    (path,) = report.render_plots([result], tmp_path)
    assert path.stat().st_size > 0
