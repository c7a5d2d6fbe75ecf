"""The batching benchmark's tables and targets from hand-written samples (no timing measured)."""

from __future__ import annotations

from typing import Any

from benchmarks import report
from benchmarks._batching_parts import quantiles
from benchmarks._batching_tables import extra_tables, extra_targets


def _gain(gain: float, identical: int) -> dict[str, Any]:
    return {"tps_alone": 10.0, "tps_together": 10.0 * gain, "gain": gain, "identical": identical}


def _streams(gap: float) -> dict[str, Any]:
    return {"ttft": [0.1, 0.3], "gaps": [gap, gap, 2 * gap]}


def test_targets_carry_limit_and_value_so_the_report_shows_them() -> None:
    eights = [_gain(3.5, 8), _gain(3.2, 8)]
    batches = [_gain(2.8, 8), _gain(2.6, 7)]
    stream_runs = {1: [_streams(0.05)] * 2, 8: [_streams(0.08), _streams(0.12)]}

    targets = extra_targets(eights, batches, stream_runs)

    assert [(t["limit"], t["value"], t["met"]) for t in targets] == [
        ("≥ 2.50x and 8/8 identical", 3.35, True),
        ("≥ 3.00x and 8/8 identical", 3.35, True),
        ("≥ 2.50x and 8/8 identical", 2.7, False),  # one round had 7/8 identical
        ("≥ 3.00x and 8/8 identical", 2.7, False),
        ("≤ 2.00x", 2.0, False),  # median 2.0x, but the worst round is 2.4x
    ]
    assert "7/8 in the worst round" in targets[2]["name"]
    result = {"id": "s", "title": "6. Server throughput", "order": 6, "targets": targets}
    text = report.render_markdown([result], plots=False)
    assert "| ≥ 3.00x and 8/8 identical | 3.350x | met |" in text
    assert "None" not in text


def test_tables_show_gains_identity_quantiles_and_peak_memory() -> None:
    batches = [_gain(3.0, 8)]
    naives = [{"tps": 25.0, "identical": 5}]
    stream_runs = {1: [_streams(0.05)], 4: [_streams(0.1)]}
    mem = {"1 requests": [700.4, 710.6], "8 streams": [850.0]}

    batch, streams, memory = extra_tables(batches, naives, stream_runs, mem)

    assert batch["rows"] == [["1", "10.00", "30.00 (3.00x)", "8/8", "25.00 (2.50x)", "5/8"]]
    assert streams["rows"] == [
        ["1", "200 / 280", "50 / 90", "1.00x"],  # p90 interpolated between samples
        ["4", "200 / 280", "100 / 180", "2.00x"],
    ]
    assert memory["rows"] == [["1 requests", "711"], ["8 streams", "850"]]


def test_quantiles_of_one_and_many_samples() -> None:
    assert quantiles([0.2]) == {"p50": 0.2, "p90": 0.2}
    q = quantiles([float(i) for i in range(1, 12)])
    assert (q["p50"], q["p90"]) == (6.0, 10.0)
