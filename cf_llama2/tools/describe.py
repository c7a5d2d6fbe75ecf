"""A tool's parameters as readable lines for a prompt: one line per argument.

The tool instruction used to print each tool's JSON schema. A readable list, one argument per
line with its type, whether it is required and its description beside its name, is shorter and
puts each argument's meaning next to it; measured on BFCL cases with the embedded model (forced
calls), it made the model put the user's numbers into the right arguments more often (see
docs/benchmarks.md, section 9). Nothing is lost: an argument whose value is itself structured
(an object with properties, an array of objects) keeps its JSON schema on its line, and a tool
with no declared properties says it takes any JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["describe_parameters"]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _is_structured(schema: Mapping[str, Any]) -> bool:
    if isinstance(schema.get("properties"), dict) and schema["properties"]:
        return True
    items = schema.get("items")
    return isinstance(items, dict) and _is_structured(items)


def _type_of(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return f"always {_json(schema['const'])}"
    if isinstance(schema.get("enum"), list):
        return "one of " + ", ".join(_json(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return " or ".join(_type_of(o) for o in options if isinstance(o, dict))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = schema.get("items")
        return f"array of {_type_of(items)}" if isinstance(items, dict) and items else "array"
    return str(kind) if kind else "any JSON value"


def _line(name: str, schema: Mapping[str, Any], required: bool) -> str:
    facts = [_type_of(schema), "required" if required else "optional"]
    if "default" in schema:
        facts.append(f"default {_json(schema['default'])}")
    text = f"  - {name} ({', '.join(facts)})"
    description = str(schema.get("description") or "").strip()
    if description:
        text += f": {description}"
    if _is_structured(schema):
        inner = {k: v for k, v in schema.items() if k != "description"}
        text += f" Schema: {_json(inner)}"
    return text


def describe_parameters(parameters: Mapping[str, Any]) -> list[str]:
    """The lines that describe a tool's ``parameters`` (a JSON schema of an object)."""
    props = parameters.get("properties")
    if not isinstance(props, dict) or not props:
        if parameters.get("additionalProperties") is False or parameters.get("properties") == {}:
            return ["  arguments: none (an empty object)"]
        return ["  arguments: any JSON object"]
    required = set(parameters.get("required") or [])
    lines = ["  arguments:"]
    for name, schema in props.items():
        lines.append(_line(str(name), schema if isinstance(schema, dict) else {}, name in required))
    return lines
