"""BFCL data for the tool-calling benchmark: loading, schema conversion and AST scoring.

Files: ``BFCL_v4_*<category>*.json`` (one JSON case per line: ``id``, ``question[0]`` the
conversation, ``function`` the tools) and their ``possible_answer_<file>`` (beside them, or in
``possible_answer/<file>``) with ``ground_truth: [{name: {param: [allowed values]}}]``.
Java/JavaScript variants are skipped (their values are source code strings).

Schema dialect -> JSON Schema: ``dict`` -> ``object``, ``float`` -> ``number``, ``tuple`` ->
``array``, ``any`` -> no type; tool names with dots get ``_`` (and map back for scoring).

Scoring follows BFCL's AST checker (``bfcl_eval/eval_checker/ast_eval``): exactly one call; the
right function; no parameter the function does not declare; every required parameter present;
each given parameter equal to one of the allowed values, where strings compare lower-cased with
spaces and ``, . / - _ * ^`` dropped, an int is accepted for a float, lists compare element by
element and dicts key by key under the same rules; an allowed value ``""`` means the parameter
may be left out. Irrelevance: right when there is no call at all.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Case", "load_cases", "score_call", "to_json_schema"]

CATEGORIES = ("simple", "multiple", "irrelevance")
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array"}
_STRIP = re.compile(r"[ ,./\-_*^]")


@dataclass
class Case:
    """One BFCL case, converted."""

    id: str
    category: str
    messages: list[dict[str, str]]
    tools: list[dict[str, Any]]
    """OpenAI-style tool dicts (``type: function``), names with ``.`` replaced."""
    names: dict[str, str]
    """Converted name -> BFCL name."""
    answer: list[dict[str, dict[str, list[Any]]]]


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter schema dialect converted to JSON Schema (a new object)."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            kind = _TYPES.get(value, value)
            if kind != "any":
                out["type"] = kind
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf"):
            out[key] = to_json_schema(value)
        elif key == "default" or key == "optional":
            continue
        else:
            out[key] = value
    if out.get("type") == "object":
        out.setdefault("properties", {})
    return out


def _files(directory: Path, category: str) -> list[Path]:
    found = sorted(directory.glob(f"BFCL_v4_*{category}*.json"))
    return [p for p in found if "java" not in p.name and not p.name.startswith("possible")]


def _answers(path: Path) -> dict[str, Any]:
    for candidate in (
        path.parent / f"possible_answer_{path.name}",
        path.parent / "possible_answer" / path.name,
    ):
        if candidate.exists():
            rows = [json.loads(line) for line in candidate.read_text().splitlines() if line]
            return {r["id"]: r["ground_truth"] for r in rows}
    return {}


def load_cases(directory: Path, category: str, limit: int | None, seed: int) -> list[Case]:
    """The cases of ``category`` in ``directory``: a fixed-seed sample of ``limit`` if given."""
    cases: list[Case] = []
    files = _files(directory, category)
    if not files:
        raise SystemExit(f"no BFCL_v4_*{category}*.json file in {directory}")
    for path in files:
        answers = _answers(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            if category != "irrelevance" and raw["id"] not in answers:
                continue
            names = {f["name"].replace(".", "_"): f["name"] for f in raw["function"]}
            tools = [
                {
                    "type": "function",
                    "function": {
                        "name": f["name"].replace(".", "_"),
                        "description": f.get("description", ""),
                        "parameters": to_json_schema(f.get("parameters", {"type": "dict"})),
                    },
                }
                for f in raw["function"]
            ]
            messages = [{"role": m["role"], "content": m["content"]} for m in raw["question"][0]]
            cases.append(
                Case(raw["id"], category, messages, tools, names, answers.get(raw["id"], []))
            )
    if limit is not None and limit < len(cases):
        cases = random.Random(seed).sample(cases, limit)
    return cases


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return _STRIP.sub("", value).lower()
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _equal(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, int) and not isinstance(got, bool):
        return float(got) == want
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_equal(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return set(got) <= set(want) and all(
            _equal(got[k], w) if k in got else "" in (w if isinstance(w, list) else [w])
            for k, w in want.items()
        )
    if type(got) is not type(want) and not (
        isinstance(got, (int, float)) and isinstance(want, (int, float))
    ):
        return False
    return bool(_norm(got) == _norm(want))


def score_call(case: Case, calls: list[tuple[str, Any]]) -> tuple[bool, str]:
    """``(right, reason)`` for the calls a model made (name, parsed arguments or raw text)."""
    if case.category == "irrelevance":
        return (not calls, "called a tool" if calls else "")
    if len(calls) != 1:
        return False, f"{len(calls)} calls"
    name, args = calls[0]
    if not isinstance(args, dict):
        return False, "arguments are not a JSON object"
    original = case.names.get(name, name)
    truth = next((t[original] for t in case.answer if original in t), None)
    if truth is None:
        return False, f"wrong function {name}"
    tool = next(t for t in case.tools if t["function"]["name"] == name)
    schema = tool["function"]["parameters"]
    for key in args:
        if key not in schema.get("properties", {}):
            return False, f"unknown parameter {key}"
    for key in schema.get("required", []):
        if key not in args:
            return False, f"missing required {key}"
    for key, allowed in truth.items():
        if key not in args:
            if "" not in allowed:
                return False, f"missing {key}"
            continue
        if not any(_equal(args[key], a) for a in allowed if a != "" or args[key] == ""):
            return False, f"wrong value {key}={json.dumps(args[key])[:60]}"
    return True, ""


def runaway(args: Any) -> bool:
    """A value no sane call has: a string over 200 characters, a number over 15 digits, a list
    over 50 items (what unbounded decoding produces when it does not close)."""
    if isinstance(args, str):
        return len(args) > 200
    if isinstance(args, bool):
        return False
    if isinstance(args, (int, float)):
        return len(str(abs(args)).replace(".", "")) > 15
    if isinstance(args, list):
        return len(args) > 50 or any(runaway(a) for a in args)
    if isinstance(args, dict):
        return any(runaway(v) for v in args.values())
    return False
