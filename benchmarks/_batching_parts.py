"""Parts of the server throughput benchmark: streams, memory, adapter ``batch``, naive ``generate``.

Each function measures one point of the continuous-batching benchmark in the same run as the
server levels: time to first token and inter-token time of C concurrent streams, the server
process's peak resident memory while a level runs, ``ChatCloudflareLlama2.batch`` of 8 prompts
against a loop of ``invoke``, and plain ``model.generate`` on a left-padded batch of the same 8
prompts (the naive alternative a user could write).
"""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["adapter_batch", "naive_generate", "peak_rss", "streams"]


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def peak_rss(pid: int, out: list[float]) -> Iterator[None]:
    """Samples ``pid``'s resident memory every 20 ms during the block; appends the peak (MiB)."""
    peak = [_rss_mib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mib(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        out.append(max(peak[0], _rss_mib(pid)))


def streams(url: str, prompt: str, clients: int, tokens: int) -> dict[str, Any]:
    """C simultaneous streaming greedy requests: time to first token and gaps between tokens (s)."""
    import httpx

    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    ttft: list[float] = []
    gaps: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client() -> None:
        arrivals: list[float] = []
        with httpx.Client(timeout=600) as http:
            barrier.wait()
            start = time.perf_counter()
            with http.stream("POST", url, json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith("data: {") and json.loads(line[6:]).get("response"):
                        arrivals.append(time.perf_counter())
        if not arrivals:
            raise RuntimeError("a stream produced no text")
        with lock:
            ttft.append(arrivals[0] - start)
            gaps.extend(b - a for a, b in itertools.pairwise(arrivals))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(ttft) != clients:
        raise RuntimeError(f"{clients - len(ttft)} of {clients} streams failed")
    return {"ttft": ttft, "gaps": gaps}


def quantiles(samples: list[float]) -> dict[str, float]:
    """p50 and p90 of ``samples``."""
    if len(samples) < 2:
        return {"p50": samples[0], "p90": samples[0]}
    cuts = statistics.quantiles(samples, n=10, method="inclusive")
    return {"p50": statistics.median(samples), "p90": cuts[8]}


def adapter_batch(prompts: list[str], tokens: int) -> Callable[[], dict[str, Any]]:
    """A callable timing ``ChatCloudflareLlama2(backend="local").batch`` against ``invoke`` calls.

    The adapter is built once (it loads the embedded model); each call of the returned function
    runs the loop of ``invoke`` and then ``batch`` with ``max_concurrency`` 8.
    """
    from langchain_cf_llama2 import ChatCloudflareLlama2

    llm = ChatCloudflareLlama2(backend="local", temperature=0, max_tokens=tokens)
    llm.invoke("Hi")  # warm-up

    def produced(messages: list[Any]) -> int:
        return sum(int(m.usage_metadata["output_tokens"]) for m in messages)

    def run() -> dict[str, Any]:
        start = time.perf_counter()
        alone = [llm.invoke(p) for p in prompts]
        t_alone = time.perf_counter() - start
        start = time.perf_counter()
        together = llm.batch(prompts, config={"max_concurrency": len(prompts)})
        t_together = time.perf_counter() - start
        same = [a.content == b.content for a, b in zip(alone, together, strict=True)]
        tps_alone = produced(alone) / t_alone
        tps_together = produced(together) / t_together
        return {
            "tps_alone": tps_alone,
            "tps_together": tps_together,
            "gain": tps_together / tps_alone,
            "identical": sum(same),
            "answers": [str(a.content) for a in alone],
        }

    return run


def naive_generate(prompts: list[str], tokens: int) -> Callable[[list[str]], dict[str, Any]]:
    """A callable timing plain ``model.generate`` on a left-padded batch of ``prompts``.

    The returned function takes the one-by-one answers (``invoke``'s) of the same round and
    reports tokens/s plus how many of its answers start the same way (the naive batch is free
    to differ: padding and pooled int8 outliers change the rounding).
    """
    import torch

    from ._model import load_embedded

    model, tokenizer, _ = load_embedded()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    width = batch["input_ids"].shape[1]

    def run(reference: list[str]) -> dict[str, Any]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        elapsed = time.perf_counter() - start
        new = out[:, width:]
        produced = 0
        same = 0
        for i, row in enumerate(new.tolist()):
            ids = []
            for t in row:
                if t in (tokenizer.eos_token_id, tokenizer.pad_token_id):
                    break
                ids.append(t)
            produced += len(ids) + (1 if len(ids) < len(row) else 0)
            text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            same += int(text == reference[i].strip())
        return {"tps": produced / elapsed, "identical": same}

    return run
