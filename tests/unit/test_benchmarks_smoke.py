"""The benchmark report renders from result files; the pure helpers compute what they claim.

No timing is measured or asserted here: the inputs are hand-written sample results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks._common import ratio_stats, stats
from benchmarks.memory import LLAMA2_7B, param_split, predicted_bytes


def _sample(order: int, met: bool) -> dict[str, Any]:
    return {
        "id": f"sample{order}",
        "title": f"{order}. Sample section",
        "order": order,
        "description": "A sample description.",
        "command": f"python -m benchmarks.sample{order} --rounds 3",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "torch_threads": 1,
            "load_avg_start": [1.0, 1.0, 1.0],
            "load_avg_end": [2.0, 1.0, 1.0],
            "os": "Linux",
            "python": "3.11",
        },
        "versions": {"torch": "2.13.0", "httpx": "0.28.1"},
        "tables": [{"columns": ["variant", "ratio"], "rows": [["a | b", "1.010x"]]}],
        "targets": [
            {
                "name": "a vs b",
                "limit": "≤ 1.03x",
                "value": 1.01 if met else 1.2,
                "met": met,
                **({} if met else {"cause": "a sample cause"}),
            }
        ],
        "plots": [
            {
                "file": f"sample{order}.png",
                "kind": "barh",
                "title": "Sample",
                "series": [{"label": "a", "median": 1.01, "min": 0.99, "max": 1.05}],
                "reference": 1.03,
            }
        ],
        "notes": ["A sample note."],
        "analysis": ["A sample analysis paragraph."],
    }


def _write(directory: Path, results: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        (directory / f"{r['id']}.json").write_text(json.dumps(r), encoding="utf-8")


def test_report_renders_sections_in_order_with_machine_command_and_targets(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "results", [_sample(2, met=False), _sample(1, met=True)])
    results = report.load_results(tmp_path / "results")
    assert [r["order"] for r in results] == [1, 2]

    text = report.render_markdown(results)

    assert text.index("## 1. Sample section") < text.index("## 2. Sample section")
    assert "Test CPU, 2 cores" in text
    assert "torch threads 1" in text
    assert "load average 1.0 → 2.0" in text
    assert "`python -m benchmarks.sample1 --rounds 3`" in text
    assert "torch 2.13.0, httpx 0.28.1" in text
    assert "| a \\| b | 1.010x |" in text  # pipes inside cells are escaped
    assert "![Sample](benchmarks/sample1.png)" in text
    assert "> A sample note." in text
    assert "A sample analysis paragraph." in text
    # the summary table and the closing note name the miss and its cause
    assert "| 2. Sample section | a vs b | ≤ 1.03x | 1.200 | **missed** |" in text
    assert "1 target(s) missed" in text
    assert "Cause: a sample cause" in text


def test_report_closing_note_when_every_target_is_met(tmp_path: Path) -> None:
    _write(tmp_path, [_sample(1, met=True)])
    text = report.render_markdown(report.load_results(tmp_path), plots=False)
    assert "Every target was met on this run." in text
    assert "![" not in text


def test_report_main_writes_markdown_and_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _write(tmp_path / "results", [_sample(1, met=True)])
    out = tmp_path / "docs" / "benchmarks.md"
    out.parent.mkdir()

    report.main(["--results", str(tmp_path / "results"), "--out", str(out)])

    assert out.read_text(encoding="utf-8").startswith("# Benchmarks")
    png = tmp_path / "docs" / "benchmarks" / "sample1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_main_without_results_says_so(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no result files"):
        report.main(["--results", str(tmp_path), "--out", str(tmp_path / "b.md"), "--no-plots"])


def test_stats_and_per_round_ratios() -> None:
    assert stats([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    r = ratio_stats([2.0, 3.0, 4.0], [2.0, 2.0, 2.0])
    assert (r["median"], r["min"], r["max"]) == (1.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="longer"):  # rounds must pair up
        ratio_stats([1.0], [1.0, 2.0])


def test_llama2_7b_parameter_count_and_footprints() -> None:
    split = param_split(LLAMA2_7B)
    # Llama-2-7b-hf has 6,738,415,616 parameters
    assert split["linear"] + split["rest"] == 6_738_415_616
    assert predicted_bytes(split, quantized=False, rest_bytes=4) == 4 * 6_738_415_616
    int8 = predicted_bytes(split, quantized=True, rest_bytes=2)
    # int8 linear weights + fp32 row scales + bf16 embeddings/head/norms
    assert int8 == split["linear"] + 4 * split["linear_rows"] + 2 * split["rest"]
    assert 0.25 < int8 / (4 * 6_738_415_616) < 0.27


def test_tied_embeddings_are_counted_once() -> None:
    tied = param_split({**LLAMA2_7B, "tie_word_embeddings": True})
    untied = param_split(LLAMA2_7B)
    assert untied["rest"] - tied["rest"] == LLAMA2_7B["vocab_size"] * LLAMA2_7B["hidden_size"]
