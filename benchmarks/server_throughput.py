"""6. Server throughput: 1, 4 and 8 concurrent clients on the local server (embedded int8 model).

The server (:func:`cf_llama2.server.create_app` on a :class:`LocalBackend`, served by
``serve_in_thread``) runs in a separate process, so the clients do not share its interpreter.
Each level sends C simultaneous requests (one per client thread, greedy, N tokens, non-streaming)
and waits for all; throughput = generated tokens / wall time. Levels are interleaved per round.
The batching gain is the throughput at C over the throughput at 1 in the same round.

    python -m benchmarks.server_throughput [--tokens 32] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

from ._common import ROOT, base_parser, machine_facts, stats, write_result
from ._model import PROMPT

LEVELS = (1, 4, 8)
MODEL = "@cf/meta/llama-2-7b-chat-int8"


def serve(threads: int, max_concurrency: int) -> None:
    """Child process: load the model, serve it, print ``PORT <n>``, run until stdin closes."""
    from ._common import setup_threads

    setup_threads(threads)
    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.server import serve_in_thread

    from ._model import load_embedded

    model, tokenizer, _ = load_embedded()
    backend = LocalBackend(model=model, tokenizer=tokenizer)
    with serve_in_thread(backend, max_concurrency=max_concurrency, max_queue=64) as handle:
        print(f"PORT {handle.port}", flush=True)
        sys.stdin.read()


def _level(url: str, clients: int, tokens: int) -> dict[str, Any]:
    import httpx

    body = {
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
    }
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            barrier.wait()
            start = time.perf_counter()
            response = http.post(url, json=body)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            usage = response.json()["result"]["usage"]
            with lock:
                results.append({"latency": elapsed, "tokens": usage["completion_tokens"]})

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    produced = sum(r["tokens"] for r in results)
    if len(results) != clients:
        raise RuntimeError(f"{clients - len(results)} of {clients} requests failed")
    return {
        "wall": wall,
        "tokens": produced,
        "tps": produced / wall,
        "latencies": [r["latency"] for r in results],
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "", rounds=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--max-concurrency", type=int, default=8, help="server admission limit")
    parser.add_argument("--serve", action="store_true", help=argparse_hidden())
    args = parser.parse_args(argv)
    machine = machine_facts(args.threads)
    if args.serve:
        serve(args.threads, args.max_concurrency)
        return

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.server_throughput",
            "--serve",
            "--threads",
            str(args.threads),
            "--max-concurrency",
            str(args.max_concurrency),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"server failed to start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}/client/v4/accounts/bench/ai/run/{MODEL}"
        _level(url, 1, 4)  # warm-up
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in LEVELS}
        for r in range(args.rounds):
            order = LEVELS[r % len(LEVELS) :] + LEVELS[: r % len(LEVELS)]
            for c in order:
                runs[c].append(_level(url, c, args.tokens))
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()

    rows, series = [], []
    for c in LEVELS:
        tps = stats([x["tps"] for x in runs[c]])
        gain = stats([x["tps"] / one["tps"] for x, one in zip(runs[c], runs[1], strict=True)])
        lat = stats([v for x in runs[c] for v in x["latencies"]])
        rows.append(
            [
                str(c),
                f"{tps['median']:.2f} ({tps['min']:.2f}-{tps['max']:.2f})",
                f"{gain['median']:.2f}x ({gain['min']:.2f}-{gain['max']:.2f})",
                f"{lat['median']:.2f} ({lat['min']:.2f}-{lat['max']:.2f})",
                str(runs[c][0]["tokens"]),
            ]
        )
        series.append(
            {
                "label": f"{c} client{'s' if c > 1 else ''}",
                "median": tps["median"],
                "min": tps["min"],
                "max": tps["max"],
                "gain": gain["median"],
            }
        )
    result: dict[str, Any] = {
        "title": "6. Server throughput",
        "order": 6,
        "description": (
            f"The local server on the embedded int8 model, C clients each sending one "
            f"non-streaming greedy request of {args.tokens} tokens at the same moment; "
            "throughput = all generated tokens / wall time until the last answer. Gain = "
            "throughput at C / throughput at 1 in the same round."
        ),
        "machine": machine,
        "params": {
            "tokens": args.tokens,
            "rounds": args.rounds,
            "server_max_concurrency": args.max_concurrency,
        },
        "tables": [
            {
                "columns": [
                    "clients",
                    "tokens/s median (min-max)",
                    "gain vs 1 client",
                    "request latency s",
                    "tokens per level",
                ],
                "rows": rows,
            }
        ],
        "targets": [],
        "plots": [
            {
                "file": "server_throughput.png",
                "kind": "bar",
                "title": "Local server throughput, embedded int8 model (median, min-max whiskers)",
                "ylabel": "generated tokens/s",
                "series": series,
            }
        ],
        "notes": [],
        "analysis": [
            "The server does not batch: `LocalBackend` generates one request at a time (one "
            "worker thread, and a lock around each model step), so concurrent requests queue: "
            "the gain stays near 1.0x and latency grows with the number of clients. There is "
            "no throughput target. Batched decoding is not implemented; it would need a "
            "scheduler inside `LocalBackend` that runs one forward pass over all active "
            "sequences (each with its own KV cache, sampler, stop filter and grammar) instead of "
            "one request at a time.",
        ],
        "raw_runs": {str(k): v for k, v in runs.items()},
    }
    write_result("server_throughput", result, args.out)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
