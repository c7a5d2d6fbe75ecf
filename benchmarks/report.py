"""Assemble ``docs/benchmarks.md`` and the PNG plots from the JSON results.

Every benchmark script writes ``docs/benchmarks/results/<id>.json`` with the same shape: a
title, a description, the machine, versions and command, tables (columns + rows of strings),
targets (name, limit, value, met, optional cause), plots (a kind and a series) and notes. This
module only renders that: no measurement happens here.

    python -m benchmarks.report [--results DIR] [--out docs/benchmarks.md] [--no-plots]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["load_results", "main", "render_markdown", "render_plots"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_INTRO = """\
# Benchmarks

Numbers for choosing an integration on speed and memory, measured with the scripts in
`benchmarks/` (see `benchmarks/README.md`) on the machine named in each section. The machines are
noisy (shared, 2 CPU cores), so:

* every comparison runs its variants **in one process, interleaved** round by round (each round
  runs every variant once, in a rotated order), and ratios are taken **per round** against the
  baseline of the same round;
* tables give the **median with min-max** over rounds, never a lone absolute time;
* each section states the machine (`lscpu` model, cores, torch threads, load average at start
  and end), the versions and the exact command that produced it.

Regenerate everything with `python -m benchmarks.run_all` (or one script, then
`python -m benchmarks.report`). Tests never assert on timings.
"""


def load_results(directory: Path) -> list[dict[str, Any]]:
    """All result files in ``directory``, in section order."""
    results = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("id", path.stem)
        results.append(data)
    return sorted(results, key=lambda r: (r.get("order", 99), r["id"]))


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return lines


def _machine_line(result: Mapping[str, Any]) -> str:
    m = result.get("machine", {})
    parts = [f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"]
    if "memory_gib" in m:
        parts.append(f"{m['memory_gib']} GiB RAM")
    if "torch_threads" in m:
        parts.append(f"torch threads {m['torch_threads']}")
    if "load_avg_start" in m:
        end = m.get("load_avg_end", ["?"])
        parts.append(f"load average {m['load_avg_start'][0]} → {end[0]}")
    parts.append(f"{m.get('os', '')}, Python {m.get('python', '?')}")
    return "; ".join(parts)


def _versions_line(result: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items())


def _value(t: Mapping[str, Any]) -> str:
    value = t.get("value")
    shown = f"{value:.3f}" if isinstance(value, (int, float)) else str(value)
    return shown + str(t.get("unit", ""))


def _target_text(t: Mapping[str, Any]) -> str:
    shown = _value(t)
    verdict = "met" if t.get("met") else "**missed**"
    return f"{t['name']}: {shown} (target {t.get('limit', '?')}) — {verdict}"


def render_markdown(results: Sequence[Mapping[str, Any]], *, plots: bool = True) -> str:
    """The whole ``docs/benchmarks.md`` text for ``results``."""
    out = [_INTRO]
    out.append("## Summary\n")
    summary = []
    for r in results:
        for t in r.get("targets", []):
            shown = _value(t)
            summary.append(
                [
                    r.get("title", r["id"]),
                    t["name"],
                    t.get("limit", ""),
                    shown,
                    "met" if t.get("met") else "**missed**",
                ]
            )
    if summary:
        out.extend(_table(["section", "target", "limit", "measured (median)", "verdict"], summary))
    else:
        out.append("No targets recorded.")
    out.append("")
    for r in results:
        out.append(f"## {r.get('title', r['id'])}\n")
        if r.get("description"):
            out.append(str(r["description"]) + "\n")
        out.append(f"- Machine: {_machine_line(r)}")
        out.append(f"- Versions: {_versions_line(r)}")
        out.append(f"- Command: `{r.get('command', '?')}`")
        if r.get("finished"):
            out.append(f"- Finished: {r['finished']}")
        out.append("")
        for table in r.get("tables", []):
            if table.get("caption"):
                out.append(f"*{table['caption']}*\n")
            out.extend(_table(table["columns"], table["rows"]))
            out.append("")
        if plots:
            for plot in r.get("plots", []):
                out.append(f"![{plot.get('title', '')}](benchmarks/{plot['file']})\n")
        targets = r.get("targets", [])
        if targets:
            out.append("Targets:\n")
            out.extend(f"- {_target_text(t)}" for t in targets)
            out.append("")
        for note in r.get("notes", []):
            out.append(f"> {note}\n")
        for paragraph in r.get("analysis", []):
            out.append(str(paragraph) + "\n")
    missed = [(r, t) for r in results for t in r.get("targets", []) if not t.get("met")]
    out.append("## Closing note\n")
    if not missed:
        out.append("Every target was met on this run.\n")
    else:
        out.append(f"{len(missed)} target(s) missed on this run:\n")
        for r, t in missed:
            cause = t.get("cause") or "see the section's analysis"
            out.append(f"- {r.get('title', r['id'])} — {_target_text(t)}. Cause: {cause}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _barh(ax: Any, plot: Mapping[str, Any]) -> None:
    series = plot["series"]
    labels = [s["label"] for s in series]
    med = [s["median"] for s in series]
    lo = [max(0.0, s["median"] - s["min"]) for s in series]
    hi = [max(0.0, s["max"] - s["median"]) for s in series]
    y = list(range(len(series)))
    ax.barh(y, med, xerr=[lo, hi], color="#4c72b0", capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    if plot.get("reference") is not None:
        ax.axvline(plot["reference"], color="#c44e52", linestyle="--", label="target")
        ax.legend(loc="lower right", fontsize=8)
    ax.axvline(1.0, color="grey", linewidth=0.8)
    if max(s["max"] for s in series) > 5:  # a few huge ratios would flatten the others
        ax.set_xscale("log")
        ax.set_xlim(left=0.5)
    for i, (value, item) in enumerate(zip(med, series, strict=True)):
        at = (max(value, item["max"]), i)
        ax.annotate(f"{value:.2f}x", at, xytext=(4, -3), textcoords="offset points", fontsize=7)
    ax.set_xlabel(plot.get("xlabel", ""))


def _memory(ax: Any, plot: Mapping[str, Any]) -> None:
    series = plot["series"]
    y = list(range(len(series)))
    foot = [s["median"] for s in series]
    peak = [s.get("peak_rss") or 0 for s in series]
    ax.barh([v - 0.2 for v in y], foot, height=0.4, label="model footprint", color="#4c72b0")
    ax.barh(
        [v + 0.2 for v in y],
        peak,
        height=0.4,
        label="peak RSS of the process (load + generation)",
        color="#dd8452",
    )
    ax.set_yticks(y)
    ax.set_yticklabels([s["label"] for s in series], fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_xlabel(plot.get("xlabel", "MiB"))


def _latency(ax: Any, plot: Mapping[str, Any]) -> None:
    series = plot["series"]
    y = list(range(len(series)))
    ax.barh(y, [s["median"] for s in series], color="#4c72b0", label="median")
    ax.scatter([s["p90"] for s in series], y, color="#dd8452", marker="|", s=200, label="p90")
    ax.scatter([s["max"] for s in series], y, color="#c44e52", marker="x", label="max")
    ax.set_yticks(y)
    ax.set_yticklabels([s["label"] for s in series], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(plot.get("xlabel", "ms"))


def _bar(ax: Any, plot: Mapping[str, Any]) -> None:
    series = plot["series"]
    x = list(range(len(series)))
    med = [s["median"] for s in series]
    lo = [max(0.0, s["median"] - s["min"]) for s in series]
    hi = [max(0.0, s["max"] - s["median"]) for s in series]
    ax.bar(x, med, yerr=[lo, hi], color="#4c72b0", capsize=4)
    ax.set_xticks(x)
    ax.set_xticklabels([s["label"] for s in series])
    ax.set_ylabel(plot.get("ylabel", ""))


def _grouped(ax: Any, plot: Mapping[str, Any]) -> None:
    series, groups = plot["series"], plot["groups"]
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, s["values"], width=width, label=s["label"])
    ax.set_xticks(list(range(len(groups))))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel(plot.get("ylabel", ""))
    ax.legend(fontsize=7, ncol=2)


_KINDS = {"barh": _barh, "memory": _memory, "latency": _latency, "bar": _bar, "grouped": _grouped}


def render_plots(results: Sequence[Mapping[str, Any]], directory: Path) -> list[Path]:
    """Draw every plot of ``results`` into ``directory``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    directory.mkdir(parents=True, exist_ok=True)
    for r in results:
        for plot in r.get("plots", []):
            draw = _KINDS.get(plot.get("kind", ""))
            if draw is None or not plot.get("series"):
                continue
            rows = len(plot["series"])
            height = 1.8 + 0.35 * rows if plot["kind"] not in ("bar", "grouped") else 4.0
            fig, ax = plt.subplots(figsize=(9, height))
            draw(ax, plot)
            ax.set_title(plot.get("title", ""), fontsize=10)
            ax.grid(axis="y" if plot["kind"] in ("bar", "grouped") else "x", alpha=0.3)
            fig.tight_layout()
            path = directory / plot["file"]
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=DOCS / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=DOCS / "benchmarks.md")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        raise SystemExit(f"no result files in {args.results}; run a benchmark first")
    if not args.no_plots:
        for path in render_plots(results, args.out.parent / "benchmarks"):
            print(f"wrote {path}")
    args.out.write_text(render_markdown(results, plots=not args.no_plots), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
