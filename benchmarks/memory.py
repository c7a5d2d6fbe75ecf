"""3. Memory: model footprint and peak RSS of the embedded model per dtype, and the 7B figures.

Each configuration loads in a FRESH subprocess (peak RSS is per process), which reports the RSS
after the imports, the RSS and peak RSS after loading, ``model.get_memory_footprint()``, the
peak after a short generation, and whether that generation ran. The 7B figures are computed from
Llama-2-7B's parameter counts with the same formula, checked against the embedded model's
measured footprint.

    python -m benchmarks.memory [--rounds 1]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from typing import Any

from ._common import ROOT, base_parser, machine_facts, stats, write_result

TARGET = 0.42
CONFIGS = {
    "fp32": (None, "float32"),
    "bf16": (None, "bfloat16"),
    "fp16": (None, "float16"),
    "int8 (rest bf16, backend default)": ("int8", "bfloat16"),
    "int8 (rest fp32)": ("int8", "float32"),
}
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

LLAMA2_7B = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "tie_word_embeddings": False,
}
"""Llama-2-7b-hf's ``config.json`` (the fields that set the parameter count)."""


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str) -> dict[str, Any]:
    """Load one configuration in this (fresh) process and measure it."""
    quantization, dtype = CONFIGS[name]
    from ._common import setup_threads

    setup_threads(1)
    import bitsandbytes  # noqa: F401  (imported by every configuration: same baseline)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    from cf_llama2.backends.local import LocalBackend
    from cf_llama2.schema import ChatRequest

    from ._model import load_embedded

    facts: dict[str, Any] = {"rss_after_imports_mib": _rss_mib()}
    model, tokenizer, _ = load_embedded(quantization, getattr(torch, dtype))
    facts["footprint_mib"] = model.get_memory_footprint() / 2**20
    facts["rss_after_load_mib"] = _rss_mib()
    facts["peak_rss_after_load_mib"] = _peak_mib()
    facts["params"] = sum(p.numel() for p in model.parameters())
    try:
        backend = LocalBackend(model=model, tokenizer=tokenizer)
        request = ChatRequest(
            messages=[{"role": "user", "content": "Hi"}], temperature=0, max_tokens=4
        )
        backend.run(request)
        facts["generates"] = "yes"
    except Exception as exc:  # fp16 matmuls may be missing on a CPU build
        facts["generates"] = f"no: {type(exc).__name__}: {str(exc)[:120]}"
    facts["peak_rss_after_generate_mib"] = _peak_mib()
    return facts


def param_split(config: dict[str, Any]) -> dict[str, int]:
    """Parameters in the decoder's linear layers (int8 under bitsandbytes) and the rest.

    bitsandbytes keeps the output head in full precision; with tied embeddings the head is the
    embedding matrix. Norm weights are counted in the rest.
    """
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or h // heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o + k, v
    mlp = 3 * h * i
    linear = n * (attn + mlp)
    out_rows = n * (heads * head_dim + 2 * kv * head_dim + h + 2 * i + h)
    embed = config["vocab_size"] * h
    head = 0 if config.get("tie_word_embeddings") else embed
    norms = n * 2 * h + h
    return {"linear": linear, "linear_rows": out_rows, "rest": embed + head + norms}


def predicted_bytes(split: dict[str, int], quantized: bool, rest_bytes: int) -> int:
    """Footprint from parameter counts: int8 weights + one fp32 scale per output row, or all
    parameters at ``rest_bytes`` each."""
    if not quantized:
        return (split["linear"] + split["rest"]) * rest_bytes
    return split["linear"] + 4 * split["linear_rows"] + split["rest"] * rest_bytes


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "", rounds=1, threads=False)
    parser.add_argument("--child", choices=list(CONFIGS), help=argparse_hidden())
    args = parser.parse_args(argv)
    machine = machine_facts()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)), flush=True)
        return

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        for name in CONFIGS:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.memory", "--child", name],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                runs[name].append({"error": (proc.stderr or proc.stdout)[-400:]})
            else:
                runs[name].append(json.loads(line[-1][7:]))
            print(f"  round {r + 1}: {name} done", file=sys.stderr, flush=True)

    from transformers import AutoConfig

    from cf_llama2.backends.local import prepare_embedded_model

    small = AutoConfig.from_pretrained(str(prepare_embedded_model(progress=False))).to_dict()
    small_split = param_split(small)
    big_split = param_split(LLAMA2_7B)

    def med(name: str, key: str) -> dict[str, float] | None:
        values = [run[key] for run in runs[name] if key in run]
        return stats(values) if values else None

    fp32 = med("fp32", "footprint_mib")
    rows, series = [], []
    for name, (quantization, dtype) in CONFIGS.items():
        foot = med(name, "footprint_mib")
        if foot is None:
            error = runs[name][0].get("error", "failed")
            rows.append([name, "failed", "", "", "", "", "", error.replace("\n", " ")[-160:]])
            continue
        predicted = predicted_bytes(small_split, quantization == "int8", BYTES[dtype]) / 2**20
        ratio = foot["median"] / fp32["median"] if fp32 else float("nan")
        peak = med(name, "peak_rss_after_load_mib")
        after = med(name, "rss_after_load_mib")
        imports = med(name, "rss_after_imports_mib")
        gen_peak = med(name, "peak_rss_after_generate_mib")
        rows.append(
            [
                name,
                f"{foot['median']:.1f}",
                f"{predicted:.1f}",
                f"{ratio:.3f}x",
                f"{imports['median']:.0f}" if imports else "",
                f"{after['median']:.0f}" if after else "",
                f"{peak['median']:.0f} ({peak['min']:.0f}-{peak['max']:.0f})" if peak else "",
                runs[name][0].get("generates", "")
                + (f" (peak {gen_peak['median']:.0f})" if gen_peak else ""),
            ]
        )
        series.append(
            {
                "label": name,
                "median": foot["median"],
                "min": foot["min"],
                "max": foot["max"],
                "peak_rss": gen_peak["median"] if gen_peak else None,
            }
        )

    big_rows = []
    fp32_big = predicted_bytes(big_split, False, 4)
    for name, (quantization, dtype) in CONFIGS.items():
        b = predicted_bytes(big_split, quantization == "int8", BYTES[dtype])
        big_rows.append([name, f"{b / 1e9:.2f}", f"{b / 2**30:.2f}", f"{b / fp32_big:.3f}x"])

    int8_name = "int8 (rest bf16, backend default)"
    int8 = med(int8_name, "footprint_mib")
    value = int8["median"] / fp32["median"] if int8 and fp32 else float("nan")
    result: dict[str, Any] = {
        "title": "3. Memory",
        "order": 3,
        "description": (
            "The embedded SmolLM2-135M-Instruct loaded per configuration, each in a fresh "
            "subprocess. Footprint is `model.get_memory_footprint()`; 'predicted' is the "
            "formula used for the 7B table (int8 linear weights + one fp32 scale per output "
            "row; embeddings, head and norms at the rest's dtype). RSS figures in MiB include "
            "the imports (torch, transformers, bitsandbytes)."
        ),
        "machine": machine,
        "params": {
            "rounds": args.rounds,
            "embedded_params": small_split,
            "llama2_7b_params": big_split,
        },
        "tables": [
            {
                "columns": [
                    "configuration",
                    "footprint MiB",
                    "predicted MiB",
                    "vs fp32",
                    "RSS after imports",
                    "RSS after load",
                    "peak RSS (load)",
                    "generates (peak RSS after)",
                ],
                "rows": rows,
            },
            {
                "caption": (
                    "Llama-2-7B computed from its parameter counts "
                    f"({big_split['linear']:,} in linear layers, {big_split['rest']:,} in "
                    "embeddings, head and norms)"
                ),
                "columns": ["configuration", "GB", "GiB", "vs fp32"],
                "rows": big_rows,
            },
        ],
        "targets": [
            {
                "name": "int8 footprint / fp32 footprint (embedded model)",
                "limit": f"≤ {TARGET:.2f}x",
                "value": round(value, 4),
                "met": value <= TARGET,
            }
        ],
        "plots": [
            {
                "file": "memory.png",
                "kind": "memory",
                "title": "Embedded model: footprint and peak RSS per dtype",
                "xlabel": "MiB",
                "series": series,
            }
        ],
        "notes": [
            "fp32 and bf16/fp16 weights are memory-mapped from the safetensors file and paged in "
            "on first use, so their RSS right after loading understates them; the peak after a "
            "short generation is the figure to compare. An int8 load reads the weights and then "
            "quantises them, which is why its load peak is higher than its footprint."
        ],
        "raw_runs": runs,
    }
    write_result("memory", result, args.out)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
