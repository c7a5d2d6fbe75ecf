"""5. Streaming latency: server sends an event -> the LangChain callback / LlamaIndex stream has it.

The stamped server (:mod:`benchmarks.canned_server` ``--mode stamped``, a separate process) sends
E text events ``--interval-ms`` apart; each event's text is the ``time.monotonic_ns()`` taken
just before it was written. Each variant reads the stream and notes ``time.monotonic_ns()`` when
the event reaches the user: the LangChain ``on_llm_new_token`` callback, the chunk a LangChain
``stream``/``astream`` yields, the response LlamaIndex's ``stream_chat``/``astream_chat`` yields.
Latency = arrival - send. Any buffering shows at once: a buffered event waits for the next
(interval) or for the end of the stream (E x interval). Raw httpx reading the SSE lines is the
floor.

    python -m benchmarks.streaming_latency [--events 20] [--interval-ms 20] [--rounds 5]
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

from ._common import base_parser, machine_facts, stats, write_result
from .canned_server import Running

MODEL = "@cf/meta/llama-2-7b-chat-int8"
ACCOUNT = "bench"
TOKEN = "bench-token"
_STAMP = re.compile(r"<(\d+)>")

Arrivals = list[tuple[int, int]]
"""(sent ns, arrived ns) per event that arrived."""


def _stamps(text: str, now: int, out: Arrivals) -> None:
    for match in _STAMP.finditer(text):
        out.append((int(match.group(1)), now))


def _variants(url: str, loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[], Arrivals]]:
    import httpx
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
    from langchain_core.messages import HumanMessage
    from llama_index.core.base.llms.types import ChatMessage

    from cf_llama2.backends.remote import RemoteBackend
    from cf_llama2.schema import ChatRequest, TextDelta
    from langchain_cf_llama2 import ChatCloudflareLlama2
    from llamaindex_cf_llama2 import CloudflareLlama2

    run_url = f"{url}/accounts/{ACCOUNT}/ai/run/{MODEL}"
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    headers = {"authorization": f"Bearer {TOKEN}"}
    client = httpx.Client()
    common = {"account_id": ACCOUNT, "api_token": TOKEN, "base_url": url}
    backend = RemoteBackend(**common)
    request = ChatRequest(messages=[{"role": "user", "content": "Hi"}], stream=True)
    lc = ChatCloudflareLlama2(**common, temperature=0)
    li = CloudflareLlama2(**common, temperature=0)
    lc_msgs = [HumanMessage("Hi")]
    li_msgs = [ChatMessage(role="user", content="Hi")]

    def raw_httpx() -> Arrivals:
        out: Arrivals = []
        with client.stream("POST", run_url, json=body, headers=headers) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    now = time.monotonic_ns()
                    _stamps(json.loads(line[6:]).get("response", ""), now, out)
        return out

    def core_stream() -> Arrivals:
        out: Arrivals = []
        for event in backend.stream(request):
            if isinstance(event, TextDelta):
                _stamps(event.text, time.monotonic_ns(), out)
        return out

    class Callback(BaseCallbackHandler):
        def __init__(self) -> None:
            self.out: Arrivals = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            _stamps(token, time.monotonic_ns(), self.out)

    class AsyncCallback(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.out: Arrivals = []

        async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            _stamps(token, time.monotonic_ns(), self.out)

    def lc_callback() -> Arrivals:
        handler = Callback()
        for _ in lc.stream(lc_msgs, config={"callbacks": [handler]}):
            pass
        return handler.out

    def lc_chunks() -> Arrivals:
        out: Arrivals = []
        for chunk in lc.stream(lc_msgs):
            _stamps(str(chunk.content), time.monotonic_ns(), out)
        return out

    def lc_astream_callback() -> Arrivals:
        async def run() -> Arrivals:
            handler = AsyncCallback()
            async for _ in lc.astream(lc_msgs, config={"callbacks": [handler]}):
                pass
            return handler.out

        return loop.run_until_complete(run())

    def li_stream() -> Arrivals:
        out: Arrivals = []
        for response in li.stream_chat(li_msgs):
            _stamps(response.delta or "", time.monotonic_ns(), out)
        return out

    def li_astream() -> Arrivals:
        async def run() -> Arrivals:
            out: Arrivals = []
            async for response in await li.astream_chat(li_msgs):
                _stamps(response.delta or "", time.monotonic_ns(), out)
            return out

        return loop.run_until_complete(run())

    variants: dict[str, Callable[[], Arrivals]] = {
        "raw httpx (SSE lines)": raw_httpx,
        "RemoteBackend.stream (core events)": core_stream,
        "ChatCloudflareLlama2.stream: on_llm_new_token callback": lc_callback,
        "ChatCloudflareLlama2.stream: yielded chunk": lc_chunks,
        "ChatCloudflareLlama2.astream: async on_llm_new_token callback": lc_astream_callback,
        "CloudflareLlama2.stream_chat (LlamaIndex): yielded response": li_stream,
        "CloudflareLlama2.astream_chat (LlamaIndex): yielded response": li_astream,
    }
    try:
        from langchain_cloudflare import ChatCloudflareWorkersAI

        cf = ChatCloudflareWorkersAI(
            account_id=ACCOUNT, api_token=TOKEN, model=MODEL, base_url=url, temperature=0
        )

        def cf_callback() -> Arrivals:
            handler = Callback()
            for _ in cf.stream(lc_msgs, config={"callbacks": [handler]}):
                pass
            return handler.out

        variants["ChatCloudflareWorkersAI.stream (langchain-cloudflare): callback"] = cf_callback
    except Exception:
        pass
    return variants


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "", rounds=5, threads=False)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    machine = machine_facts()
    loop = asyncio.new_event_loop()
    with Running("stamped", events=args.events, interval_ms=args.interval_ms) as url:
        variants = _variants(url, loop)
        skipped: dict[str, str] = {}
        for name in list(variants):  # warm-up, and drop a third-party row that cannot stream
            try:
                variants[name]()
            except Exception as exc:
                skipped[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
                del variants[name]
        arrivals: dict[str, list[Arrivals]] = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                arrivals[name].append(variants[name]())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()

    rows, series = [], []
    for name, runs in arrivals.items():
        lat_us = [(got - sent) / 1000 for run in runs for sent, got in run]
        first_us = [(run[0][1] - run[0][0]) / 1000 for run in runs if run]
        counts = [len(run) for run in runs]
        s = stats(lat_us) if lat_us else {"median": float("nan"), "min": 0.0, "max": 0.0}
        p90 = statistics.quantiles(lat_us, n=10)[-1] if len(lat_us) >= 10 else float("nan")
        separate = all(c == args.events for c in counts)
        rows.append(
            [
                name,
                f"{s['median']:.0f}",
                f"{p90:.0f}",
                f"{s['max']:.0f}",
                f"{statistics.median(first_us):.0f}" if first_us else "",
                f"{min(counts)}-{max(counts)} of {args.events}",
                "yes" if separate else "NO",
            ]
        )
        series.append(
            {
                "label": name,
                "median": s["median"] / 1000,
                "min": s["min"] / 1000,
                "p90": p90 / 1000,
                "max": s["max"] / 1000,
            }
        )
    floor = series[0]["median"] if series else float("nan")
    targets = []
    interval_ms = args.interval_ms
    for item in series[1:]:
        # "No buffering": every event reaches the user well before the next one is sent.
        ok = item["p90"] < interval_ms / 2
        targets.append(
            {
                "name": f"{item['label']}: p90 latency < half the event interval",
                "limit": f"< {interval_ms / 2:.0f} ms",
                "value": round(item["p90"], 3),
                "unit": " ms",
                "met": ok,
            }
        )
    result: dict[str, Any] = {
        "title": "5. Streaming latency",
        "order": 5,
        "description": (
            f"{args.events} events {args.interval_ms:.0f} ms apart from a loopback server in a "
            "separate process; latency from the server writing an event to the user code "
            "seeing it (CLOCK_MONOTONIC in both processes), in µs, over all events of "
            f"{args.rounds} interleaved rounds. 'one by one' checks that every event arrived "
            "on its own (no batching into later chunks). Raw httpx reading SSE lines is the "
            f"floor ({floor * 1000:.0f} µs median)."
        ),
        "machine": machine,
        "params": {"events": args.events, "interval_ms": args.interval_ms, "rounds": args.rounds},
        "tables": [
            {
                "columns": [
                    "reader",
                    "median µs",
                    "p90 µs",
                    "max µs",
                    "first event µs",
                    "events seen",
                    "one by one",
                ],
                "rows": rows,
            }
        ],
        "targets": targets,
        "plots": [
            {
                "file": "streaming_latency.png",
                "kind": "latency",
                "title": "Server send -> user code, per event (loopback)",
                "xlabel": "ms (median bar, p90 and max markers)",
                "series": series,
            }
        ],
        "notes": [f"{k} not measured: {v}" for k, v in skipped.items()],
    }
    write_result("streaming_latency", result, args.out)


if __name__ == "__main__":
    main()
