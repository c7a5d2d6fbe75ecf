"""``$ref`` expansion is bounded: fan-out and long chains are refused, not built."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.tools._refs import MAX_INLINED_NODES, MAX_REF_DEPTH, inline_refs


def _fan_out(levels: int) -> dict[str, Any]:
    defs: dict[str, Any] = {
        f"D{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}},
        }
        for i in range(levels)
    }
    defs[f"D{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}


def test_fan_out_is_refused_with_the_limit() -> None:
    with pytest.raises(RequestValidationError) as info:
        inline_refs(_fan_out(20), tool="f")
    assert info.value.field == "tools[f].parameters.$ref"
    assert str(MAX_INLINED_NODES) in str(info.value)
    assert "too large" in str(info.value)


def test_small_fan_out_is_written_out() -> None:
    out = inline_refs(_fan_out(3))
    leaf = out["properties"]["x"]["properties"]["a"]["properties"]["b"]["properties"]["a"]
    assert leaf == {"type": "string"}


def test_long_chain_is_refused() -> None:
    n = MAX_REF_DEPTH + 2
    defs: dict[str, Any] = {f"D{i}": {"$ref": f"#/$defs/D{i + 1}"} for i in range(n)}
    defs[f"D{n}"] = {"type": "string"}
    schema = {"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs}
    with pytest.raises(RequestValidationError, match=f"nested more than {MAX_REF_DEPTH}"):
        inline_refs(schema)
