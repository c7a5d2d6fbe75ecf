"""Write out local ``$ref`` pointers of a JSON schema (``#/$defs/X``, ``#/definitions/X``).

Pydantic puts nested models in ``$defs``. A tool's parameters end up embedded in larger
schemas (the tool-call grammar of the local backend, the wire's per-property rules, the prompt),
where such pointers no longer resolve, so :func:`cf_llama2.tools.validate_parameters` makes
every tool's parameters self-contained with :func:`inline_refs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import RequestValidationError

__all__ = ["inline_refs"]

_REF_PREFIXES = ("#/$defs/", "#/definitions/")


def inline_refs(schema: Mapping[str, Any], *, tool: str = "") -> dict[str, Any]:
    """Replace local ``$ref`` pointers (``#/$defs/X``) with the definitions they point to.

    Pydantic puts nested models in ``$defs``; once a tool's parameters are embedded in a larger
    schema (the tool-call grammar, the wire's per-property rules, the prompt) those pointers no
    longer resolve, so the parameters are made self-contained here. Keywords next to a
    ``$ref`` (such as ``description``) are kept, and an inlined model gets
    ``additionalProperties: false`` unless it says otherwise.

    Raises:
        RequestValidationError: a pointer to a missing definition, or a recursive model (which
            cannot be written out as a finite schema).
    """
    where = f"tools[{tool}].parameters" if tool else "parameters"
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update(found)

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = next((ref[len(p) :] for p in _REF_PREFIXES if ref.startswith(p)), None)
            if name is None or name not in defs:
                raise RequestValidationError(
                    f"{where} has $ref {ref!r}, which does not point into its $defs; "
                    "use local definitions ('#/$defs/<name>') or write the schema out",
                    field=f"{where}.$ref",
                    value=ref,
                    limit="a '#/$defs/<name>' pointer to an existing definition",
                )
            if name in seen:
                raise RequestValidationError(
                    f"{where} is recursive ({' -> '.join((*seen, name))}); tool arguments need "
                    "a finite schema. Limit the nesting depth with separate models.",
                    field=f"{where}.$ref",
                    value=ref,
                    limit="a non-recursive schema",
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
