"""The tool-calling accuracy page shows the BFCL results file as it is."""

from __future__ import annotations

import json

import pytest

from benchmarks.accuracy_page import (
    END,
    PAGE,
    RESULT,
    START,
    load_forced,
    load_heldout,
    render_results,
    updated_page,
)

RESULT_EXAMPLE = {
    "params": {"data": "/data/bfcl-live", "limit": 4, "seed": 0, "max_tokens": 128},
    "machine": {"cores": 2, "load_avg_start": [3.5, 3.0, 2.0]},
    "finished": "2026-12-01T03:03:26+00:00",
    "tables": [
        {"caption": "Accuracy", "columns": ["variant", "simple"], "rows": [["ours", "1/4"]]},
    ],
    "plots": [{"file": "tool_calling.png", "title": "Tool-calling accuracy (%)"}],
    "targets": [
        {
            "name": "simple",
            "limit": ">= 40%",
            "value": 25.0,
            "unit": "%",
            "met": False,
            "cause": "the model picks the wrong value",
        },
        {"name": "irrelevance", "limit": ">= 70%", "value": 100.0, "unit": "%", "met": True},
    ],
    "notes": ["Small sample."],
}


def test_the_results_render_as_tables_targets_and_notes() -> None:
    text = render_results(RESULT_EXAMPLE)
    assert "`bfcl-live`" in text  # the data set's name, not a local path
    assert "/data/" not in text
    assert "at most 4 cases per category" in text
    assert "| variant | simple |\n|---|---|\n| ours | 1/4 |" in text
    assert "![Tool-calling accuracy (%)](benchmarks/tool_calling.png)" in text
    missed = "- simple: 25% (target >= 40%): **missed**. Cause: the model picks the wrong value"
    assert missed in text
    assert "- irrelevance: 100% (target >= 70%): met" in text
    assert "> Small sample." in text
    assert "Held-out" not in text


def test_a_heldout_run_follows_under_its_own_heading() -> None:
    heldout = {**RESULT_EXAMPLE, "params": {**RESULT_EXAMPLE["params"], "data": "/d/bfcl-heldout"}}
    text = render_results(RESULT_EXAMPLE, heldout)
    live, _, rest = text.partition("### Held-out check")
    assert "`bfcl-live`" in live
    assert "`bfcl-heldout`" in rest
    assert "| ours | 1/4 |" in rest


def test_the_section_is_replaced_between_the_markers_only() -> None:
    page = f"# Title\n\nbefore\n\n{START}\n\nold\n\n{END}\n\nafter\n"
    new = updated_page(page, RESULT_EXAMPLE)
    assert new.startswith("# Title\n\nbefore\n\n")
    assert new.endswith(f"{END}\n\nafter\n")
    assert "old" not in new
    assert updated_page(new, RESULT_EXAMPLE) == new
    with pytest.raises(ValueError, match="results"):
        updated_page("# no markers\n", RESULT_EXAMPLE)


def test_the_page_shows_the_last_results_file() -> None:
    result = json.loads(RESULT.read_text(encoding="utf-8"))
    page = PAGE.read_text(encoding="utf-8")
    fresh = updated_page(page, result, load_heldout(), load_forced())
    assert fresh == page, "run: python -m benchmarks.accuracy_page"


def test_the_forced_comparison_and_the_held_out_check_get_their_own_headings() -> None:
    text = render_results(RESULT_EXAMPLE, RESULT_EXAMPLE, RESULT_EXAMPLE)
    forced = text.index("### Forced calls against ChatLlamaCpp")
    assert forced < text.index("### Held-out check")
    assert "### Forced calls" not in render_results(RESULT_EXAMPLE)
