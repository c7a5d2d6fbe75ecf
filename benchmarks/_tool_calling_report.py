"""The tool-calling benchmark's variants, case loop and result tables (see tool_calling.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._bfcl import Case, score_call
from ._common import path_from_root

_TARGETS = {
    ("simple", "required"): 0.40,
    ("multiple", "required"): 0.30,
    ("simple", "auto"): 0.15,
    ("irrelevance", "auto"): 0.70,
}


def _shaping_from(spec: str, base: Any) -> Any:
    changes: dict[str, Any] = {}
    for part in spec.split(","):
        key, _, value = part.partition(":")
        field = {f.name: f for f in dataclasses.fields(base)}[key]
        changes[key] = value == "true" if field.type == "bool" else type(getattr(base, key))(value)
    return dataclasses.replace(base, **changes)


def variants(args: argparse.Namespace) -> dict[str, Callable[[Case, str], Any]]:
    """Variant name -> runner, in table order."""
    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.backends.local.call_shaping import DEFAULT_SHAPING, PREVIOUS_SHAPING

    from .tool_calling import adapter_runner, llamacpp_runner, plain_runner

    backend = LocalBackend()
    out: dict[str, Callable[[Case, str], Any]] = {
        "plain model (no grammar)": plain_runner(backend, args.plain_tokens),
        "previous": adapter_runner(backend, PREVIOUS_SHAPING, args.max_tokens),
    }
    if args.levers:
        for name, spec in (
            ("+ bounded values", "bounded:true"),
            ("+ required first", "required_first:true"),
            ("+ copy bias", f"copy_bias:{DEFAULT_SHAPING.copy_bias}"),
            ("+ argument lines", "tool_schemas:false"),
            ("+ call bias", f"call_bias:{DEFAULT_SHAPING.call_bias}"),
        ):
            out[name] = adapter_runner(
                backend, _shaping_from(spec, PREVIOUS_SHAPING), args.max_tokens
            )
    for spec in getattr(args, "try_", None) or []:
        name, _, body = spec.partition("=")
        out[name] = adapter_runner(backend, _shaping_from(body, DEFAULT_SHAPING), args.max_tokens)
    out["ours"] = adapter_runner(backend, DEFAULT_SHAPING, args.max_tokens)
    if not args.no_llamacpp:
        runner = llamacpp_runner(args.max_tokens, args.threads)
        if runner is not None:
            out["ChatLlamaCpp (GGUF, forced)"] = runner
        else:
            print(
                "ChatLlamaCpp unavailable (langchain-community, llama-cpp-python)", file=sys.stderr
            )
    return out


def _applies(variant: str, category: str, mode: str) -> bool:
    return not variant.startswith("ChatLlamaCpp") or (category, mode) == ("simple", "required")


def run_cases(
    cases: dict[str, list[Case]],
    runners: dict[str, Callable[[Case, str], Any]],
    modes: Callable[[str], list[str]],
    log: Any = None,
) -> list[dict[str, Any]]:
    """Every case through every variant and mode (variants rotated per case); one record each,
    also written as a JSON line to ``log`` (an open text file) as soon as it is made."""
    from .tool_calling import is_runaway, summarize

    records: list[dict[str, Any]] = []
    names = list(runners)
    turn = 0
    for category, items in cases.items():
        for index, case in enumerate(items):
            for mode in modes(category):
                order = names[turn % len(names) :] + names[: turn % len(names)]
                turn += 1
                for variant in order:
                    if not _applies(variant, category, mode):
                        continue
                    start = time.perf_counter()
                    try:
                        calls = runners[variant](case, mode)
                        error = ""
                    except Exception as exc:  # a case the variant cannot run counts as wrong
                        calls, error = [], f"{type(exc).__name__}: {str(exc)[:200]}"
                    right, reason = score_call(case, calls)
                    records.append(
                        {
                            "variant": variant,
                            "category": category,
                            "mode": mode,
                            "id": case.id,
                            "right": right and not error,
                            "reason": error or reason,
                            "runaway": is_runaway(calls),
                            "calls": summarize(calls),
                            "seconds": round(time.perf_counter() - start, 2),
                        }
                    )
                    if log is not None:
                        log.write(json.dumps(records[-1], ensure_ascii=False) + "\n")
                        log.flush()
            print(f"  {category} {index + 1}/{len(items)}", file=sys.stderr, flush=True)
    return records


def _cell(rows: Sequence[dict[str, Any]]) -> tuple[str, float | None]:
    if not rows:
        return "n/a", None
    right = sum(r["right"] for r in rows)
    return f"{100 * right / len(rows):.0f}% ({right}/{len(rows)})", right / len(rows)


def build_result(
    records: list[dict[str, Any]],
    cases: dict[str, list[Case]],
    variants: list[str],
    args: argparse.Namespace,
    elapsed: float,
) -> dict[str, Any]:
    """The result file: accuracy and well-formedness tables, a grouped plot, the targets."""
    columns = [
        (c, m) for c in cases for m in (["auto"] if c == "irrelevance" else ["required", "auto"])
    ]
    acc: dict[tuple[str, str, str], float | None] = {}
    rows, form_rows = [], []
    for v in variants:
        row = [v]
        for c, m in columns:
            text, value = _cell(
                [r for r in records if (r["variant"], r["category"], r["mode"]) == (v, c, m)]
            )
            acc[(v, c, m)] = value
            row.append(text)
        rows.append(row)
        forced = [r for r in records if r["variant"] == v and r["mode"] == "required"]
        if forced:
            closed = sum(1 for r in forced if r["calls"] and not r["runaway"])
            secs = sorted(r["seconds"] for r in forced)
            form_rows.append(
                [
                    v,
                    f"{closed}/{len(forced)}",
                    str(sum(r["runaway"] for r in forced)),
                    f"{secs[len(secs) // 2]:.1f}",
                ]
            )
    n = {c: len(x) for c, x in cases.items()}
    targets = []
    for (c, m), limit in _TARGETS.items():
        value = acc.get(("ours", c, m))
        if value is not None:
            targets.append(
                {
                    "name": f"{c} ({m}) accuracy, ours",
                    "limit": f">= {limit:.0%}",
                    "value": round(100 * value, 1),
                    "unit": "%",
                    "met": value >= limit,
                }
            )
    cpp = acc.get(("ChatLlamaCpp (GGUF, forced)", "simple", "required"))
    ours = acc.get(("ours", "simple", "required"))
    if cpp is not None and ours is not None:
        targets.append(
            {
                "name": "simple (forced): ours above ChatLlamaCpp",
                "limit": f"> {100 * cpp:.1f}%",
                "value": round(100 * ours, 1),
                "unit": "%",
                "met": ours > cpp,
            }
        )
    ours_forced = [r for r in records if r["variant"] == "ours" and r["mode"] == "required"]
    if ours_forced:
        bad = sum(1 for r in ours_forced if not r["calls"] or r["runaway"])
        targets.append(
            {
                "name": "forced calls that did not close or ran away, ours",
                "limit": "0",
                "value": bad,
                "unit": "",
                "met": bad == 0,
            }
        )
    plot_series = [
        {"label": v, "values": [100 * (acc[(v, c, m)] or 0.0) for c, m in columns]}
        for v in variants
    ]
    return {
        "title": getattr(args, "title", None) or "9. Tool-calling accuracy (BFCL)",
        "order": 9,
        "description": (
            "AST accuracy on BFCL cases (scoring as BFCL's checker: right function, no unknown or "
            "missing required parameter, every value among the allowed ones; irrelevance: no call) "
            "of the embedded SmolLM2-135M-Instruct (int8), greedy, every variant on the same "
            f"cases in one run, case by case. Data: `{args.data.name}`, "
            + ", ".join(f"{c}: {k} cases" for c, k in n.items())
            + (
                f" (a fixed-seed sample, seed {args.seed}, of at most {args.limit} per category)"
                if args.limit
                else " (all)"
            )
            + f"; max_tokens {args.max_tokens}. The machine was shared and loaded; "
            f"the whole run took {elapsed / 60:.0f} min."
        ),
        "params": {
            "data": path_from_root(str(args.data)),
            "limit": args.limit,
            "seed": args.seed,
            "max_tokens": args.max_tokens,
        },
        "tables": [
            {
                "caption": "Accuracy per category (tool_choice mode)",
                "columns": ["variant", *[f"{c} ({m})" for c, m in columns]],
                "rows": rows,
            },
            {
                "caption": "Forced calls: well formed (a closed JSON call with no runaway value), "
                "runaways, median seconds per case",
                "columns": ["variant", "closed", "runaway", "median s"],
                "rows": form_rows,
            },
        ],
        "plots": [
            {
                "kind": "grouped",
                "file": f"{args.id}.png",
                "title": "Tool-calling accuracy (%)",
                "groups": [f"{c}\n({m})" for c, m in columns],
                "series": plot_series,
                "ylabel": "% right",
            }
        ],
        "targets": targets,
        "notes": [],
    }
