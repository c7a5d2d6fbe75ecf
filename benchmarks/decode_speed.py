"""Section 7: local decode speed against llama.cpp, per lever, with the step profile.

    python -m benchmarks.decode_speed [--tokens 32] [--rounds 3] [--threads 1]

One process, interleaved rounds, the same prompt (the chat prompt of ``PROMPT``: 42 tokens) and
greedy decoding for every variant: llama.cpp through llama-cpp-python on the GGUF as shipped
(skipped with a note when not installed), our int8 default, int8 with bitsandbytes' own forward
(before the lean forward), int8 with the other parts in float32, float32 and bfloat16. Then the
prefill of a ~500-token prompt, the profile of one decode step, the memory-bandwidth floor (and
a Llama-2-7B on paper), and the same call under a CPU hog from the main thread and a worker
thread, with torch's thread default and the package's.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from ._common import (
    base_parser,
    fmt_ratio,
    fmt_stats,
    interleave,
    machine_facts,
    ratio_stats,
    setup_threads,
    stats,
    write_result,
)
from ._decode_parts import (
    contention_run,
    floor_rows,
    llama_cpp_variants,
    memory_bandwidth,
    profile_breakdown,
)
from ._model import PROMPT, load_embedded

DEFAULT = "int8 default (lean forward, rest bfloat16)"
BNB = "int8, bitsandbytes' own forward (before)"
NOKERNEL = "int8 lean, no compiled kernel (CF_LLAMA2_INT8_KERNEL=off)"
INT8_FP32 = "int8 lean, rest float32"
FP32 = "float32 (quantization=None)"
BF16 = "bfloat16 (quantization=None)"
LLAMA = "llama.cpp (prompt cached)"
LLAMA_COLD = "llama.cpp (cold prompt)"


def _backends(tokens: int) -> tuple[dict[str, Any], Any, Any]:
    import torch

    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.backends.local.int8_cpu import install_lean_int8, remove_lean_int8

    int8, tokenizer, path = load_embedded("int8")
    int8_fp32, _, _ = load_embedded("int8", torch.float32)
    fp32, _, _ = load_embedded(None)
    bf16, _, _ = load_embedded(None, torch.bfloat16)
    models = {"int8": int8, "int8_fp32": int8_fp32, "fp32": fp32, "bf16": bf16}
    made = {
        name: LocalBackend(model, tokenizer=tokenizer, num_threads=0).load()
        for name, model in models.items()
    }

    def call(key: str, lean: bool | str | None, request: dict[str, Any]) -> Any:
        def run() -> Any:
            model = made[key]._model
            if lean is True:
                install_lean_int8(model)
            elif lean == "nokernel":
                os.environ["CF_LLAMA2_INT8_KERNEL"] = "off"
                try:
                    install_lean_int8(model)
                finally:
                    os.environ.pop("CF_LLAMA2_INT8_KERNEL")
            elif lean is False:
                remove_lean_int8(model)
            return made[key].run(request)

        return run

    return {"call": call, "made": made, "path": path}, tokenizer, int8


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "", rounds=3)
    parser.add_argument("--tokens", type=int, default=32, help="greedy tokens per call")
    parser.add_argument("--prefill-rounds", type=int, default=2)
    parser.add_argument("--contention-rounds", type=int, default=3)
    parser.add_argument("--contention-tokens", type=int, default=4)
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    import torch

    from cf_llama2.backends.local.embedded import embedded_gguf_path

    parts, tokenizer, int8_model = _backends(args.tokens)
    call = parts["call"]
    messages = [{"role": "user", "content": PROMPT}]
    chat = {"messages": messages, "max_tokens": args.tokens, "temperature": 0}
    long_text = " ".join([PROMPT] * 40)
    long_ids = tokenizer(long_text)["input_ids"][:500]
    long_prompt = tokenizer.decode(long_ids)
    prefill = {"prompt": long_prompt, "max_tokens": 1, "temperature": 0, "raw": True}
    llama, llama_note = llama_cpp_variants(
        str(embedded_gguf_path()), messages, args.tokens, long_prompt, args.threads
    )
    decode: dict[str, Any] = {
        DEFAULT: call("int8", True, chat),
        BNB: call("int8", False, chat),
        NOKERNEL: call("int8", "nokernel", chat),
        INT8_FP32: call("int8_fp32", True, chat),
        FP32: call("fp32", None, chat),
        BF16: call("bf16", None, chat),
    }
    decode.update({k: v for k, v in llama.items() if not k.startswith("prefill")})
    answers: dict[str, set[str]] = {}

    def check(name: str, value: Any) -> None:
        if name in (DEFAULT, BNB, NOKERNEL):
            answers.setdefault(name, set()).add(value.response)

    times = interleave(decode, args.rounds, check=check)
    counts = {DEFAULT: decode[DEFAULT]().usage.completion_tokens}
    per_token = {k: [t / counts[DEFAULT] for t in v] for k, v in times.items()}
    pre_variants = {
        "prefill " + DEFAULT: call("int8", True, prefill),
        "prefill " + BNB: call("int8", False, prefill),
        "prefill " + FP32: call("fp32", None, prefill),
        "prefill " + BF16: call("bf16", None, prefill),
    }
    if "prefill llama.cpp" in llama:
        pre_variants["prefill llama.cpp"] = llama["prefill llama.cpp"]
    pre_times = interleave(pre_variants, args.prefill_rounds)

    from cf_llama2.backends.local.int8_cpu import install_lean_int8, remove_lean_int8
    from cf_llama2.backends.local.planning import model_step

    def stepper() -> Any:
        import threading

        step = model_step(int8_model, None, threading.Lock(), None)
        ids = tokenizer(PROMPT)["input_ids"]
        state: dict[str, Any] = {"cache": step(ids, None)[1]}

        def one() -> None:
            state["cache"] = step([ids[-1]], state["cache"])[1]

        return one

    install_lean_int8(int8_model)
    prof_lean = profile_breakdown(stepper(), 8)
    remove_lean_int8(int8_model)
    prof_bnb = profile_breakdown(stepper(), 8)
    install_lean_int8(int8_model)
    bandwidth = memory_bandwidth()
    floors = floor_rows(int8_model, bandwidth)
    contention = contention_run(args.contention_rounds, args.contention_tokens, 1200.0)
    _write(
        args,
        per_token,
        pre_times,
        prof_lean,
        prof_bnb,
        bandwidth,
        floors,
        contention,
        llama_note,
        answers,
        len(long_ids),
        torch.__version__,
    )


def _write(
    args: Any,
    per_token: dict[str, list[float]],
    pre_times: dict[str, list[float]],
    prof_lean: list[list[str]],
    prof_bnb: list[list[str]],
    bandwidth: float,
    floors: list[list[str]],
    contention: dict[str, Any],
    llama_note: str,
    answers: dict[str, set[str]],
    prefill_tokens: int,
    torch_version: str,
) -> None:
    reference = LLAMA if LLAMA in per_token else None
    rows = []
    for name, samples in per_token.items():
        vs_fp32 = fmt_ratio(ratio_stats(samples, per_token[FP32]))
        vs_llama = fmt_ratio(ratio_stats(samples, per_token[reference])) if reference else "n/a"
        rows.append([name, fmt_stats(stats(samples), 1000), vs_fp32, vs_llama])
    pre_rows = [
        [name.removeprefix("prefill "), fmt_stats(stats(v), 1000, 0)]
        for name, v in pre_times.items()
    ]
    c_times = contention["times"]
    best = [min(vals) for vals in zip(*c_times.values(), strict=True)]
    c_rows = [
        [name, fmt_stats(stats(v), 1000, 0), fmt_ratio(ratio_stats(v, best))]
        for name, v in c_times.items()
    ]
    default_vs_fp32 = statistics.median(
        a / b for a, b in zip(per_token[DEFAULT], per_token[FP32], strict=True)
    )
    worst_contention = max(
        statistics.median(a / b for a, b in zip(v, best, strict=True))
        for name, v in c_times.items()
        if "package default" in name
    )
    targets = [
        {
            "name": "int8 default / float32 per token (1 thread)",
            "limit": "≤ 1.00x",
            "value": round(default_vs_fp32, 3),
            "unit": "x",
            "met": default_vs_fp32 <= 1.0,
        },
        {
            "name": "package default under a CPU hog / best configuration (worst of main, worker)",
            "limit": "≤ 2.00x",
            "value": round(worst_contention, 3),
            "unit": "x",
            "met": worst_contention <= 2.0,
        },
    ]
    if reference:
        vs = statistics.median(
            a / b for a, b in zip(per_token[DEFAULT], per_token[reference], strict=True)
        )
        targets.insert(
            0,
            {
                "name": "int8 default / llama.cpp per token (1 thread)",
                "limit": "≤ 2.50x",
                "value": round(vs, 3),
                "unit": "x",
                "met": vs <= 2.5,
                "cause": "see the step profile: the int8 matmuls and the 16-bit output head "
                "read ~2x the bytes of llama.cpp's Q4_1, and each of 30 layers runs ~40 small "
                "torch ops from Python",
            },
        )
    else:
        targets.insert(
            0,
            {
                "name": "int8 default / llama.cpp per token (1 thread)",
                "limit": "≤ 2.50x",
                "value": "not measured",
                "met": False,
                "cause": "llama-cpp-python was not installed for this run "
                "(pip install -e '.[bench-llamacpp]')",
            },
        )
    same = len(answers.get(DEFAULT, ())) == 1 and all(
        answers.get(k) == answers.get(DEFAULT) for k in (BNB, NOKERNEL)
    )
    result = {
        "title": "7. Local decode speed",
        "order": 7,
        "description": (
            f"Milliseconds per generated token for {args.tokens} greedy tokens after a 42-token "
            f"chat prompt, {args.threads} thread, interleaved rounds in one process; ratios are "
            "per round. The machine was shared with other jobs (load average in the machine "
            "line): absolute times are inflated, ratios are the figures to read."
        ),
        "machine": machine_facts(args.threads),
        "params": {
            "tokens": args.tokens,
            "rounds": args.rounds,
            "threads": args.threads,
            "prefill_tokens": prefill_tokens,
            "torch": torch_version,
        },
        "tables": [
            {
                "caption": "ms per generated token, median (min-max); ratios per round",
                "columns": ["variant", "ms/token", "÷ float32", "÷ llama.cpp (cached)"],
                "rows": rows,
            },
            {
                "caption": f"prefill of a {prefill_tokens}-token prompt, ms, median (min-max)",
                "columns": ["variant", "ms"],
                "rows": pre_rows,
            },
            {
                "caption": "one int8 decode step with the lean forward (torch.profiler, own time)",
                "columns": ["where", "ms per step", "share"],
                "rows": prof_lean,
            },
            {
                "caption": "one int8 decode step with bitsandbytes' own forward (before)",
                "columns": ["where", "ms per step", "share"],
                "rows": prof_bnb,
            },
            {
                "caption": f"the floor: bytes read per decode step at {bandwidth:.1f} GB/s "
                "(single-thread copy bandwidth measured here)",
                "columns": ["model", "bytes per token", "floor per token"],
                "rows": floors,
            },
            {
                "caption": f"{args.contention_tokens} greedy tokens with a busy loop in another "
                "process, s, median (min-max); ratio to the best configuration of the round",
                "columns": ["configuration", "s per call", "÷ best"],
                "rows": c_rows,
            },
        ],
        "targets": targets,
        "plots": [
            {
                "file": "decode_speed.png",
                "kind": "barh",
                "title": "ms per token relative to float32 (1 thread)",
                "xlabel": "ratio to float32 (median, min-max whiskers)",
                "series": [
                    {"label": name, **ratio_stats(v, per_token[FP32])}
                    for name, v in per_token.items()
                ],
                "reference": 1.0,
            }
        ],
        "notes": [
            llama_note,
            f"CPU: {_cpu_capability()}; int8 matmul: {_int8_matmul_name()}.",
            "Greedy answers of the lean forward (with and without the compiled kernel) and the "
            "bitsandbytes forward were "
            + ("identical in every round." if same else "DIFFERENT (see raw answers)."),
        ],
        "analysis": _analysis(per_token, reference),
        "raw_seconds_per_token": per_token,
        "raw_prefill_seconds": pre_times,
        "raw_contention_seconds": c_times,
    }
    write_result("decode_speed", result, args.out)


def _cpu_capability() -> str:
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def _int8_matmul_name() -> str:
    from cf_llama2.backends.local.int8_cpu import _kernels

    int_mm, linear = _kernels()
    if linear is not None:
        return (
            "the compiled AVX2 kernel (whole layer in one call; its time is in the 'Python, "
            "dispatch' row of the profile, outside torch ops)"
        )
    module = getattr(int_mm, "__module__", "") or ""
    return "torch._int_mm" if "int8_cpu" in module else "bitsandbytes' float32 fallback"


def _ratio(per_token: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(per_token[a], per_token[b], strict=True))


def _analysis(per_token: dict[str, list[float]], reference: str | None) -> list[str]:
    lean, before = _ratio(per_token, DEFAULT, FP32), _ratio(per_token, BNB, FP32)
    rest = _ratio(per_token, INT8_FP32, DEFAULT)
    kernel = _ratio(per_token, NOKERNEL, DEFAULT)
    text = [
        f"The compiled int8 kernel: the lean forward without it takes {kernel:.2f}x the "
        f"default's time per token on this CPU ({_cpu_capability()}). Without AVX-512, "
        "bitsandbytes' int8 matmul is a float32 matmul that converts each weight to float32 "
        "on every call; the AVX2 kernel computes the exact integer products from the int8 "
        "weights and, for layers without outliers, the quantization and dequantization too, "
        "in one call (bit-identical logits). With AVX-512 `torch._int_mm` runs as before and "
        "this row equals the default.",
        f"The lean int8 forward is the lever that pays: int8 went from {before:.2f}x float32 "
        f"(bitsandbytes' forward: an autograd function, five registered custom ops and a logger "
        f"call per layer, 210 layers a step) to {lean:.2f}x, {before / lean:.2f}x faster, with "
        "bit-identical logits (pinned greedy ids in the slow tests); quantizing the shared input "
        "of q/k/v and gate/up once is part of it (not measured on its own).",
        f"The other parts in float32 instead of bfloat16: {rest:.2f}x the default per token (and "
        "twice the bytes for the embeddings and output head), so the default stays bfloat16. "
        "`torch.inference_mode` and logits for the last position only were already in the "
        "decode step. A static KV cache with `torch.compile` was "
        "not adopted: compiling the bitsandbytes layers on CPU takes minutes here and needs a "
        "C++ compiler at run time, and the step that is left is bound by the int8 matmuls and "
        "the 16-bit output head (see the profile and the floor).",
    ]
    if reference is None:
        text.append("llama.cpp could not run in this run: no ratio to it is reported.")
    else:
        measured = _ratio(per_token, DEFAULT, reference)
        text.append(
            f"llama.cpp ran in this run, side by side: int8 default = {measured:.2f}x "
            f"{reference} per token (target 2.5x: "
            f"{'met' if measured <= 2.5 else 'missed'}). The gap left is kernels and bytes: "
            "llama.cpp runs fused kernels over Q4_1 weights (~4.5 bits) and a quantized head; "
            "a step of ours reads int8 weights plus a bfloat16 head through ~40 small torch "
            "ops per layer across 30 layers (see the profile)."
        )
    return text


if __name__ == "__main__":
    main()
