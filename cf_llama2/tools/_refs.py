"""Write out local ``$ref`` pointers of a JSON schema (``#/$defs/X``, ``#/definitions/X``).

Pydantic puts nested models in ``$defs``. A tool's parameters end up embedded in larger
schemas (the tool-call grammar of the local backend, the wire's per-property rules, the prompt),
where such pointers no longer resolve, so :func:`cf_llama2.tools.validate_parameters` makes
every tool's parameters self-contained with :func:`inline_refs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import RequestValidationError

__all__ = ["MAX_INLINED_NODES", "MAX_REF_DEPTH", "inline_refs"]

_REF_PREFIXES = ("#/$defs/", "#/definitions/")

MAX_REF_DEPTH = 32
"""The longest chain of ``$ref`` pointers followed inside one another."""

MAX_INLINED_NODES = 20_000
"""The most objects and arrays the written-out schema may have (refs that fan out multiply)."""


def _too_big(where: str, what: str, limit: str) -> RequestValidationError:
    got = f"too large once its $refs are written out ({what})"
    fix = "Share fewer definitions between properties or flatten the schema."
    return RequestValidationError(field=f"{where}.$ref", limit=limit, value=what, got=got, fix=fix)


def _ref_name(ref: str) -> str | None:
    return next((ref[len(p) :] for p in _REF_PREFIXES if ref.startswith(p)), None)


def _check_expanded_size(schema: Mapping[str, Any], defs: Mapping[str, Any], where: str) -> None:
    """Count the objects and arrays the written-out schema would have, without building it.

    Each definition is counted once (memoised), so refs that fan out cost nothing to count;
    missing, recursive or too-deep refs count as one node and are reported by the inlining.
    """
    memo: dict[str, int] = {}
    active: set[str] = set()

    def size(node: Any, chain: int) -> int:
        if isinstance(node, list):
            return 1 + sum(size(item, chain) for item in node)
        if not isinstance(node, Mapping):
            return 0
        total = 1 + sum(size(v, chain) for k, v in node.items() if k != "$ref")
        ref = node.get("$ref")
        name = _ref_name(ref) if isinstance(ref, str) else None
        if name is None or name not in defs or name in active or chain >= MAX_REF_DEPTH:
            return total
        if name not in memo:
            active.add(name)
            memo[name] = size(defs[name], chain + 1)
            active.discard(name)
        return min(total + memo[name], MAX_INLINED_NODES + 1)

    top = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    if size(top, 0) > MAX_INLINED_NODES:
        raise _too_big(
            where,
            f"more than {MAX_INLINED_NODES} objects and arrays",
            f"at most {MAX_INLINED_NODES} objects and arrays after inlining",
        )


_REF_FIX = "It does not point into its $defs: use local definitions or write the schema out."
_RECURSION_FIX = (
    "Tool arguments need a finite schema: limit the nesting depth with separate models."
)
_REF_FORM = "a '#/$defs/<name>' pointer to an existing definition"


def inline_refs(schema: Mapping[str, Any], *, tool: str = "") -> dict[str, Any]:
    """Replace local ``$ref`` pointers (``#/$defs/X``) with the definitions they point to.

    Pydantic puts nested models in ``$defs``; once a tool's parameters are embedded in a larger
    schema (the tool-call grammar, the wire's per-property rules, the prompt) those pointers no
    longer resolve, so the parameters are made self-contained here. Keywords next to a
    ``$ref`` (such as ``description``) are kept, and an inlined model gets
    ``additionalProperties: false`` unless it says otherwise.

    The work is bounded: a chain of more than ``MAX_REF_DEPTH`` pointers, or a result of more
    than ``MAX_INLINED_NODES`` objects and arrays (definitions that refer to the next one twice
    double at every level), is refused before it is built.

    Raises:
        RequestValidationError: a pointer to a missing definition, a recursive model (which
            cannot be written out as a finite schema), or a schema over the bounds above.
    """
    where = f"tools[{tool}].parameters" if tool else "parameters"
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)

    _check_expanded_size(schema, defs, where)
    nodes = 0

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        nonlocal nodes
        if isinstance(node, (list, Mapping)):
            nodes += 1
            if nodes > MAX_INLINED_NODES:
                raise _too_big(
                    where,
                    f"more than {MAX_INLINED_NODES} objects and arrays",
                    f"at most {MAX_INLINED_NODES} objects and arrays after inlining",
                )
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = next((ref[len(p) :] for p in _REF_PREFIXES if ref.startswith(p)), None)
            if name is None or name not in defs:
                fix = _REF_FIX
                raise RequestValidationError(
                    field=f"{where}.$ref", limit=_REF_FORM, value=ref, fix=fix
                )
            if name in seen:
                got = f"{ref!r}, recursive ({' -> '.join((*seen, name))})"
                fix = _RECURSION_FIX
                raise RequestValidationError(
                    field=f"{where}.$ref",
                    limit="a non-recursive schema",
                    value=ref,
                    got=got,
                    fix=fix,
                )
            if len(seen) >= MAX_REF_DEPTH:
                raise _too_big(
                    where,
                    f"$refs nested more than {MAX_REF_DEPTH} deep",
                    f"at most {MAX_REF_DEPTH} nested $refs",
                )
            target = resolve(defs[name], (*seen, name))
            if "properties" in target:
                # a nested model: extra keys would be ignored by its validation, so the model
                # is not offered them (a grammar would otherwise let it add keys at will)
                target.setdefault("additionalProperties", False)
            siblings = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: resolve(v, seen) for k, v in node.items()}

    top = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    out: dict[str, Any] = resolve(top, ())
    return out
