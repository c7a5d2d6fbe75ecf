"""Pieces of the decode-speed benchmark: llama.cpp, the step profile, the bandwidth floor and
the CPU-contention run (in a child process with torch's own thread defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "contention_run",
    "floor_rows",
    "llama_cpp_variants",
    "memory_bandwidth",
    "profile_breakdown",
]


def _llama2_7b_step_bytes() -> int:
    """What a Llama-2-7B decode step reads at int8: the int8 linear weights, one fp32 scale per
    output row and the 16-bit output head (of the embeddings only one row)."""
    from benchmarks.memory import LLAMA2_7B, param_split

    split = param_split(LLAMA2_7B)
    head = LLAMA2_7B["vocab_size"] * LLAMA2_7B["hidden_size"]
    return split["linear"] + 4 * split["linear_rows"] + 2 * head


def llama_cpp_variants(
    gguf: str, messages: list[dict[str, str]], tokens: int, long_prompt: str, threads: int
) -> tuple[dict[str, Callable[[], Any]], str]:
    """``{name: call}`` for llama-cpp-python on ``gguf`` (empty, with a note, when absent)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return {}, "llama-cpp-python is not installed (pip install llama-cpp-python): skipped"
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)

    def chat(cold: bool) -> Callable[[], Any]:
        def call() -> Any:
            if cold:
                llm.reset()
            out = llm.create_chat_completion(
                messages=messages, max_tokens=tokens, temperature=0.0, top_k=1
            )
            return out["usage"]["completion_tokens"]

        return call

    def prefill() -> Any:
        llm.reset()
        return llm.create_completion(long_prompt, max_tokens=1, temperature=0.0)

    version = getattr(sys.modules.get("llama_cpp"), "__version__", "?")
    return {
        "llama.cpp (prompt cached)": chat(False),
        "llama.cpp (cold prompt)": chat(True),
        "prefill llama.cpp": prefill,
    }, f"llama-cpp-python {version}, the GGUF as shipped (Q4_1)"


def profile_breakdown(step: Callable[[], Any], steps: int) -> list[list[str]]:
    """Where a decode step's time goes (torch.profiler, ``steps`` steps): rows for a table."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - start) / steps * 1000
    groups = {
        "int8 matmul kernel (aten::_int_mm)": 0.0,
        "output head and outlier matmuls (aten::mm/addmm)": 0.0,
        "attention (scaled_dot_product_attention)": 0.0,
        "bitsandbytes custom ops and autograd wrapper (own time)": 0.0,
        "dtype casts and copies": 0.0,
        "other tensor ops (norms, RoPE, activations, KV cache, quantization)": 0.0,
    }
    for event in prof.key_averages():
        own = event.self_cpu_time_total / 1000 / steps
        name = event.key
        if name == "aten::_int_mm":
            key = "int8 matmul kernel (aten::_int_mm)"
        elif name in ("aten::mm", "aten::addmm"):
            key = "output head and outlier matmuls (aten::mm/addmm)"
        elif "scaled_dot_product" in name:
            key = "attention (scaled_dot_product_attention)"
        elif name.startswith("bitsandbytes::") or name == "MatMul8bitLt":
            key = "bitsandbytes custom ops and autograd wrapper (own time)"
        elif name in ("aten::_to_copy", "aten::copy_", "aten::to", "aten::empty_strided"):
            key = "dtype casts and copies"
        else:
            key = "other tensor ops (norms, RoPE, activations, KV cache, quantization)"
        groups[key] += own
    in_ops = sum(groups.values())
    groups["Python, dispatch and profiler overhead outside tensor ops"] = max(0.0, wall - in_ops)
    del torch
    return [[k, f"{v:.2f}", f"{100 * v / wall:.0f}%"] for k, v in groups.items()] + [
        ["whole step (under the profiler)", f"{wall:.2f}", "100%"]
    ]


def memory_bandwidth(megabytes: int = 256) -> float:
    """Single-thread copy bandwidth in GB/s (read + write), best of three."""
    import torch

    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * 4 / best / 1e9


def floor_rows(model: Any, bandwidth: float) -> list[list[str]]:
    """Bytes a decode step reads and the time that takes at ``bandwidth`` (the floor)."""
    int8 = sum(p.numel() for n, p in model.named_parameters() if p.dtype.is_floating_point is False)
    head = model.get_output_embeddings().weight
    head_bytes = head.numel() * head.element_size()
    small = int8 + head_bytes
    big = _llama2_7b_step_bytes()
    return [
        [
            "SmolLM2-135M (this model)",
            f"{small / 1e6:.0f} MB",
            f"{small / bandwidth / 1e6:.1f} ms",
        ],
        ["Llama-2-7B at int8", f"{big / 1e9:.2f} GB", f"{big / bandwidth / 1e6:.0f} ms"],
    ]


# -- contention ------------------------------------------------------------------------------
_HOG = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def contention_run(rounds: int, tokens: int, seconds: float) -> dict[str, Any]:
    """Run :func:`contention_child` in a fresh interpreter with torch's default threads (no
    ``OMP_NUM_THREADS``) while a bounded busy loop runs in another process."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    hog = subprocess.Popen([sys.executable, "-c", _HOG.format(seconds=seconds)])
    try:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks._decode_parts", str(rounds), str(tokens)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds,
        ).stdout
    finally:
        hog.kill()
        hog.wait()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def contention_child(rounds: int, tokens: int) -> dict[str, Any]:
    """Main thread vs a new worker thread, torch's thread default vs the package's."""
    import torch

    from benchmarks._common import interleave
    from benchmarks._model import PROMPT, load_embedded
    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.backends.local.tuning import tune_for_decoding

    torch_default = torch.get_num_threads()
    model, tokenizer, _ = load_embedded("int8")
    backend = LocalBackend(model, tokenizer=tokenizer).load()
    request = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens}
    request["temperature"] = 0

    def variant(threads: int | None, worker: bool) -> Callable[[], Any]:
        def call() -> Any:
            tune_for_decoding(model, num_threads=threads, lean_int8=True)
            if threads == 0:
                torch.set_num_threads(torch_default)  # what the main thread has untouched
            if not worker:
                return backend.run(request)
            box: list[Any] = []
            thread = threading.Thread(target=lambda: box.append(backend.run(request)))
            thread.start()
            thread.join()
            return box[0]

        return call

    variants = {
        f"main thread, torch default ({torch_default} threads)": variant(0, False),
        "worker thread, torch default": variant(0, True),
        "main thread, package default (1 thread)": variant(None, False),
        "worker thread, package default (1 thread)": variant(None, True),
    }
    variants["worker thread, package default (1 thread)"]()  # first-call costs, untimed
    times = interleave(variants, rounds, warmup=0, progress=False)
    return {"torch_default_threads": torch_default, "times": times}


if __name__ == "__main__":
    print(json.dumps(contention_child(int(sys.argv[1]), int(sys.argv[2]))))
