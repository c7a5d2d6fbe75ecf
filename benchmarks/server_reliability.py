"""8. Server reliability: requests under load, faults survived, bad inputs tried, nothing lost.

The server runs on loopback over a fake backend that streams tokens a few ms apart (the figures
are about the server, not a model). Probes: 90 clients at once (429s retried after
``Retry-After``), the 20-level ``$ref`` fan-out with ``/health`` polled meanwhile, clients that
leave mid-stream and mid-upload, idle and half-sent connections, a body that never completes,
thirty 4 MB bodies at once, named hostile bodies, random bodies through the decoder, and SIGTERM
during a 3000-token stream of ``cf-llama2 serve``'s server loop (in a child process).

    python -m benchmarks.server_reliability [--clients 90] [--cases 20000] [--grace 2]
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx

from . import _reliability_probes as probes
from ._common import base_parser, machine_facts, write_result


def _big_bodies(url: str, count: int) -> dict[str, int]:
    body = {"messages": [{"role": "user", "content": "x" * 131_000}] * 31, "max_tokens": 1}
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            status = httpx.post(url, json=body, timeout=120).status_code
        except httpx.HTTPError:
            status = 0
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "sent": count,
        "answered": statuses.count(200),
        "refused_429": statuses.count(429),
        "lost": sum(1 for s in statuses if s not in (200, 429)),
    }


def run(args: Any) -> dict[str, Any]:
    from cf_llama2.server import create_app, serve_in_thread
    from cf_llama2.server.connections import ConnectionLimits

    machine = machine_facts()
    warnings = probes.count_warnings()
    app = create_app(probes.TickingBackend(), max_concurrency=4, max_queue=32)
    limits = ConnectionLimits(header_timeout=1.0)
    with serve_in_thread(app, limits=limits, graceful_timeout=5) as server:
        url = server.run_url(probes.MODEL)
        loaded = probes.load(url, args.clients)
        fan = probes.fan_out(url, f"{server.origin}/health")
        left = probes.disconnects(server, 13)
        slow = probes.slow_connections(server, 20, limits.header_timeout)
        late_body = probes.slow_body(server)
        big = _big_bodies(url, 30)
        hostile = probes.hostile(url)
    logged = warnings.count
    decoded = probes.bad_inputs(args.cases)
    stop = probes.sigterm(args.grace)
    lost = loaded["lost"] + big["lost"]
    tables = [
        {
            "caption": "Requests under load (max_concurrency=4, max_queue=32)",
            "columns": ["probe", "sent", "answered", "429s (retried)", "gave up on 429", "lost"],
            "rows": [
                [
                    f"{args.clients} clients at once, half streamed",
                    args.clients,
                    loaded["answered"],
                    loaded["refused_429_then_retried"],
                    loaded["gave_up"],
                    loaded["lost"],
                ],
                [
                    "30 bodies of 4 MB at once",
                    big["sent"],
                    big["answered"],
                    big["refused_429"],
                    "-",
                    big["lost"],
                ],
            ],
        },
        {
            "caption": "Faults survived",
            "columns": ["fault", "outcome"],
            "rows": [
                [
                    "20-level $ref fan-out (2.1 KB)",
                    f"{fan['status']}/{fan['code']} in {fan['seconds'] * 1000:.0f} ms; /health max "
                    f"{fan['health_max_ms']:.0f} ms over {fan['health_polls']} polls (median "
                    f"{fan['health_before_median_ms']:.0f} ms before it: the machine's load)",
                ],
                [
                    "clients leaving mid-stream and mid-upload",
                    f"{left['left']} left; {left['slots_still_held']} slots still held",
                ],
                [
                    "idle and half-sent connections (head deadline 1 s)",
                    f"{slow['closed_by_server']} of {slow['opened']} closed in "
                    f"{slow['seconds']:.1f} s",
                ],
                ["a body that never completes (deadline 30 s)", f"HTTP {late_body}"],
                ["warnings and tracebacks logged by all of the above", str(logged)],
                [
                    f"SIGTERM during a 3000-token stream (grace {args.grace:g} s)",
                    f"exit {stop['exit_status']} after {stop['seconds_to_exit']:.1f} s; "
                    f"error event: {stop['error_event']}; clean end: {stop['clean_end']}; "
                    f"'Server stopped': {stop['server_stopped_printed']}",
                ],
            ],
        },
        {
            "caption": "Bad inputs tried",
            "columns": ["body", "status", "code"],
            "rows": hostile,
        },
        {
            "caption": "Random bodies through the request decoder",
            "columns": ["cases", "valid requests", "typed errors", "anything else"],
            "rows": [
                [decoded["cases"], decoded["valid"], decoded["typed_error"], decoded["unhandled"]]
            ],
        },
    ]
    targets = [
        {
            "name": "$ref fan-out answered",
            "limit": "< 1 s",
            "value": round(fan["seconds"], 3),
            "unit": "s",
            "met": fan["seconds"] < 1.0,
        },
        {
            "name": "/health during the fan-out",
            "limit": "< 100 ms",
            "value": round(fan["health_max_ms"], 1),
            "unit": "ms",
            "met": fan["health_max_ms"] < 100,
        },
        {
            "name": "SIGTERM: exit 0 within grace + 2 s",
            "limit": f"< {args.grace + 2:g} s",
            "value": round(stop["seconds_to_exit"], 2),
            "unit": "s",
            "met": stop["exit_status"] == 0
            and stop["seconds_to_exit"] < args.grace + 2
            and stop["error_event"]
            and stop["clean_end"],
        },
        {"name": "requests lost", "limit": "0", "value": lost, "met": lost == 0},
        {
            "name": "unhandled decoder errors",
            "limit": "0",
            "value": decoded["unhandled"],
            "met": decoded["unhandled"] == 0,
        },
    ]
    return {
        "title": "8. Server reliability",
        "order": 8,
        "description": __doc__.split("\n\n")[1].replace("\n", " "),
        "machine": machine,
        "tables": tables,
        "targets": targets,
        "notes": [
            "Measured on a shared 2-core machine under load from other processes; latencies "
            "are upper bounds for a quiet machine."
        ],
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-slow"]:
        probes.serve_slow_child(float(argv[1]))
        return
    parser = base_parser(__doc__.splitlines()[0], rounds=1, threads=False)
    parser.add_argument("--clients", type=int, default=90)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--grace", type=float, default=2.0)
    args = parser.parse_args(argv)
    write_result("server_reliability", run(args), args.out)


if __name__ == "__main__":
    main()
