"""Write the BFCL results into the tool-calling accuracy page of the documentation.

The page ``docs/tool-calling.md`` holds its results between two markers; this module renders
them from ``docs/benchmarks/results/tool_calling.json`` (written by
:mod:`benchmarks.tool_calling`) and, when there is one, the held-out check
``tool_calling_forced.json`` (forced simple calls on a larger sample of the live set, beside
LangChain's ``ChatLlamaCpp``) and ``tool_calling_heldout.json`` (the same on BFCL's non-live set),
so the page shows the figures of the last runs as they are.

    python -m benchmarks.accuracy_page          # rewrite the page's results
    python -m benchmarks.accuracy_page --check  # exit 1 when the page is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .report import _table

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tool-calling.md"
RESULT = ROOT / "docs" / "benchmarks" / "results" / "tool_calling.json"
HELDOUT = RESULT.with_name("tool_calling_heldout.json")
FORCED = RESULT.with_name("tool_calling_forced.json")
START = "<!-- results: python -m benchmarks.accuracy_page -->"
END = "<!-- /results -->"


def _percent(value: Any, unit: str) -> str:
    return f"{value:g}{unit}" if isinstance(value, (int, float)) else f"{value}{unit}"


def render_results(
    result: Mapping[str, Any],
    heldout: Mapping[str, Any] | None = None,
    forced: Mapping[str, Any] | None = None,
) -> str:
    """The page's results section (between the markers): a results file, the forced-call
    comparison with ``ChatLlamaCpp`` and the held-out check (each when there is one)."""
    lines = _render_run(result)
    if forced is not None:
        lines += ["### Forced calls against ChatLlamaCpp", "", *_render_run(forced)]
    if heldout is not None:
        lines += ["### Held-out check", "", *_render_run(heldout)]
    lines += [
        "The full sections, with the machine, versions and analysis, are in "
        "[Benchmarks](benchmarks.md); the failed cases are in "
        "`docs/benchmarks/results/tool_calling*_failures.jsonl`.",
    ]
    return "\n".join(lines)


def _render_run(result: Mapping[str, Any]) -> list[str]:
    params = result.get("params", {})
    machine = result.get("machine", {})
    data = Path(str(params.get("data", "BFCL files"))).name
    limit = params.get("limit")
    sample = (
        f"a fixed-seed sample (seed {params.get('seed', 0)}) of at most {limit} cases per category"
        if limit
        else "every case"
    )
    load = machine.get("load_avg_start", ["?"])[0]
    lines = [
        f"The last run (finished {str(result.get('finished', '?'))[:10]}) scored {sample} of "
        f"`{data}` on the embedded SmolLM2-135M-Instruct in int8, greedy, with "
        f"`max_tokens={params.get('max_tokens', '?')}`, every row on the same cases in one "
        f"process, on a {machine.get('cores', '?')}-core machine shared with other jobs (load "
        f"average {load} at the start).",
        "",
    ]
    for table in result.get("tables", []):
        lines += [f"*{table['caption']}*", "", *_table(table["columns"], table["rows"]), ""]
    for plot in result.get("plots", []):
        lines += [f"![{plot['title']}](benchmarks/{plot['file']})", ""]
    if result.get("targets"):
        lines += ["Targets set for this benchmark:", ""]
        for target in result["targets"]:
            verdict = "met" if target["met"] else "**missed**"
            value = _percent(target["value"], target.get("unit", ""))
            line = f"- {target['name']}: {value} (target {target['limit']}): {verdict}"
            if not target["met"] and target.get("cause"):
                line += f". Cause: {target['cause']}"
            lines.append(line)
        lines.append("")
    for note in result.get("notes", []):
        lines += [f"> {note}", ""]
    return lines


def updated_page(
    page: str,
    result: Mapping[str, Any],
    heldout: Mapping[str, Any] | None = None,
    forced: Mapping[str, Any] | None = None,
) -> str:
    """``page`` with its results section replaced by :func:`render_results`."""
    head, start, rest = page.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the page has no {START} ... {END} section")
    return f"{head}{START}\n\n{render_results(result, heldout, forced)}\n\n{END}{tail}"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def load_heldout() -> dict[str, Any] | None:
    """The held-out results file, or None when there is none."""
    return _load(HELDOUT)


def load_forced() -> dict[str, Any] | None:
    """The forced-call comparison results file, or None when there is none."""
    return _load(FORCED)


def main(argv: list[str] | None = None) -> None:
    """Rewrite (or, with ``--check``, check) the page's results section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    result = json.loads(RESULT.read_text(encoding="utf-8"))
    page = PAGE.read_text(encoding="utf-8")
    new = updated_page(page, result, load_heldout(), load_forced())
    if args.check:
        if new != page:
            print(f"{PAGE} is out of date: run python -m benchmarks.accuracy_page")
            sys.exit(1)
        return
    PAGE.write_text(new, encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
