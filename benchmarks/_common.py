"""Shared helpers: thread setup, machine facts, interleaved timing, statistics, result files.

Method (the same in every benchmark): the variants being compared run in ONE process, in
interleaved rounds (every round runs every variant once, in a rotated order), so that a burst of
load from other processes hits all of them alike. Ratios are taken per round against the
baseline of the same round; tables report the median with min and max over rounds.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "ROOT",
    "Timer",
    "base_parser",
    "command_line",
    "fmt_ratio",
    "fmt_stats",
    "interleave",
    "machine_facts",
    "path_from_root",
    "profile_tables",
    "ratio_stats",
    "setup_threads",
    "stats",
    "versions",
    "write_result",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "docs" / "benchmarks" / "results"

_DISTRIBUTIONS = (
    "torch",
    "transformers",
    "bitsandbytes",
    "llguidance",
    "httpx",
    "starlette",
    "uvicorn",
    "langchain-core",
    "llama-index-core",
    "langchain-huggingface",
    "llama-index-llms-huggingface",
    "langchain-cloudflare",
)


def base_parser(description: str, *, rounds: int, threads: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds")
    if threads:
        parser.add_argument(
            "--threads",
            type=int,
            default=1,
            help="torch intra-op threads (default 1: on a shared 2-core machine two OpenMP "
            "threads that get descheduled slow every step down several-fold)",
        )
    parser.add_argument("--out", type=Path, default=None, help="result JSON path")
    return parser


def setup_threads(n: int) -> None:
    """Fix the torch/OpenMP thread count before torch is imported (and after, to be sure)."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    torch.set_num_threads(n)


def command_line() -> str:
    """The command that produced this run, as a user would type it from the repo root."""
    module = Path(sys.argv[0]).resolve()
    try:
        rel = module.relative_to(ROOT).with_suffix("")
        head = "python -m " + ".".join(rel.parts)
    except ValueError:
        head = "python " + shlex.quote(sys.argv[0])
    return " ".join([head, *(shlex.quote(path_from_root(a)) for a in sys.argv[1:])])


def path_from_root(arg: str) -> str:
    """An absolute path argument, written relative to the repo root (no machine paths in docs)."""
    if not os.path.isabs(arg):
        return arg
    return os.path.relpath(arg, ROOT)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts(threads: int | None = None) -> dict[str, Any]:
    """CPU model (``lscpu``), core count, memory, OS, Python, thread setting and load average."""
    facts: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        facts["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    if threads is not None:
        facts["torch_threads"] = threads
    return facts


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmarks touch (missing ones left out)."""
    found: dict[str, str] = {}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        found["cf-llama2"] = importlib.metadata.version("cf-llama2")
    except importlib.metadata.PackageNotFoundError:
        found["cf-llama2"] = "source tree"
    return found


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def interleave(
    variants: Mapping[str, Callable[[], Any]],
    rounds: int,
    *,
    warmup: int = 1,
    check: Callable[[str, Any], None] | None = None,
    progress: bool = True,
    cpu: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Time every variant once per round, rotating the order each round (ABC, BCA, CAB...).

    Args:
        variants: name -> zero-argument callable doing one unit of work.
        rounds: timed rounds.
        warmup: untimed rounds first (caches, lazy imports, first-call compilation).
        check: called with (name, return value) after each timed call, outside the timing.
        progress: print a line per round on stderr.
        cpu: when given, filled with this process's CPU seconds per call (name -> list, like
            the wall times): the client's own work, without the time spent waiting on another
            process or for a core on a busy machine.

    Returns:
        name -> list of seconds, one per round, in round order.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    if cpu is not None:
        cpu.update({name: [] for name in names})
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            cpu_start = time.process_time()
            start = time.perf_counter()
            value = variants[name]()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu[name].append(time.process_time() - cpu_start)
            if check is not None:
                check(name, value)
        if progress:
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return times


def stats(samples: Sequence[float]) -> dict[str, float]:
    """Median, min, max and count of ``samples``."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def ratio_stats(samples: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Per-round ratios ``samples[i] / baseline[i]`` summarised by :func:`stats`."""
    return stats([a / b for a, b in zip(samples, baseline, strict=True)])


def fmt_stats(s: Mapping[str, float], scale: float = 1.0, digits: int = 1) -> str:
    """``median (min-max)`` of ``s`` times ``scale``."""
    return (
        f"{s['median'] * scale:.{digits}f} "
        f"({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})"
    )


def fmt_ratio(s: Mapping[str, float]) -> str:
    """``1.02x (0.99-1.05)``."""
    return f"{s['median']:.3f}x ({s['min']:.3f}-{s['max']:.3f})"


def _short(path: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1] if "/" in path else path


def _package(file: str) -> str:
    if "/cf_llama2/" in file or "/langchain_cf_llama2/" in file or "/llamaindex_cf_llama2/" in file:
        return "cf-llama2 (this project)"
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    if file == "~":
        return "builtins (C: sockets, ssl, json...)"
    return "python stdlib"


def profile_tables(
    fn: Callable[[], Any], repeats: int, *, top: int = 12, caption: str = ""
) -> list[dict[str, Any]]:
    """cProfile ``fn`` run ``repeats`` times: the ``top`` functions by own time, and own time
    grouped by package, per run of ``fn``. Returns two tables for a result file."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        fn()
    profiler.disable()
    raw: Any = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-12
    entries = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    rows = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in entries:
        where = f"{_short(file)}:{line}({func})" if line else func
        rows.append(
            [
                f"`{where}`",
                f"{ncalls / repeats:.1f}",
                f"{1000 * tottime / repeats:.3f}",
                f"{1000 * cumtime / repeats:.3f}",
                f"{100 * tottime / total:.1f}%",
            ]
        )
    groups: dict[str, float] = {}
    for (file, _, _), value in raw.items():
        groups[_package(file)] = groups.get(_package(file), 0.0) + value[2]
    group_rows = [
        [name, f"{1000 * t / repeats:.3f}", f"{100 * t / total:.1f}%"]
        for name, t in sorted(groups.items(), key=lambda kv: kv[1], reverse=True)
    ]
    return [
        {
            "caption": caption + " — top functions by own time",
            "columns": [
                "function",
                "calls per run",
                "own ms per run",
                "cumulative ms per run",
                "share of own time",
            ],
            "rows": rows,
        },
        {
            "caption": caption + " — own time by package",
            "columns": ["package", "own ms per run", "share"],
            "rows": group_rows,
        },
    ]


def write_result(name: str, result: dict[str, Any], out: Path | None = None) -> Path:
    """Add the common facts (when absent) and write ``docs/benchmarks/results/<name>.json``."""
    result.setdefault("id", name)
    result.setdefault("command", command_line())
    result.setdefault("versions", versions())
    result.setdefault("finished", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    machine = result.setdefault("machine", machine_facts())
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path
