"""Run every benchmark (each in its own process, one after the other), then the report.

    python -m benchmarks.run_all [--quick] [--only local_adapters,memory] [--threads 1]

``local_adapters_threads2`` repeats section 1 with two torch threads (torch's default on a
2-core machine), as a separate section.

``--quick`` uses tiny settings (a smoke run of the scripts, minutes instead of tens of minutes);
its numbers are not for publishing. A failing benchmark is reported and the others still run;
the report is assembled from whatever result files exist.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ._common import ROOT

FULL: dict[str, list[str]] = {
    "memory": ["--rounds", "1"],
    "remote_overhead": ["--requests", "200", "--rounds", "7"],
    "streaming_latency": ["--events", "20", "--interval-ms", "20", "--rounds", "5"],
    "constrained": ["--rounds", "7"],
    "local_adapters": ["--tokens", "32", "--rounds", "5"],
    "server_throughput": ["--tokens", "32", "--rounds", "3"],
    "local_adapters_threads2": ["--tokens", "32", "--rounds", "5", "--tag", "threads2"],
    "decode_speed": ["--tokens", "32", "--rounds", "3"],
}
QUICK: dict[str, list[str]] = {
    "memory": ["--rounds", "1"],
    "remote_overhead": ["--requests", "16", "--rounds", "2"],
    "streaming_latency": ["--events", "5", "--interval-ms", "10", "--rounds", "1"],
    "constrained": ["--rounds", "1"],
    "local_adapters": ["--tokens", "4", "--rounds", "1"],
    "server_throughput": ["--tokens", "4", "--rounds", "1"],
    "local_adapters_threads2": ["--tokens", "4", "--rounds", "1", "--tag", "threads2"],
    "decode_speed": [
        *("--tokens", "4", "--rounds", "1", "--prefill-rounds", "1"),
        *("--contention-rounds", "1", "--contention-tokens", "2"),
    ],
}
_THREADED = {"constrained", "local_adapters", "server_throughput", "decode_speed"}
_MODULE = {"local_adapters_threads2": "local_adapters"}
_FIXED_THREADS = {"local_adapters_threads2": 2}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (local ones)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    names = [n for n in args.only.split(",") if n] or list(plan)
    failed = []
    for name in names:
        cmd = [sys.executable, "-m", f"benchmarks.{_MODULE.get(name, name)}", *plan[name]]
        if name in _FIXED_THREADS:
            cmd += ["--threads", str(_FIXED_THREADS[name])]
        elif name in _THREADED:
            cmd += ["--threads", str(args.threads)]
        print(f"== {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd, cwd=ROOT)
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    subprocess.call([sys.executable, "-m", "benchmarks.report"], cwd=ROOT)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
