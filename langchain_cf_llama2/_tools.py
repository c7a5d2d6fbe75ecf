"""Pure converters for ``bind_tools``: LangChain tool inputs and ``tool_choice`` -> core forms.

Every tool kind goes through ``convert_to_openai_tool`` and then
:func:`cf_llama2.tools.normalize_tool`, so a tool given as a ``BaseTool``, an ``@tool`` function,
a Python function, a pydantic class, a TypedDict, a JSON schema, an OpenAI-style
function-wrapped dict or a Workers AI flat dict ends up as the same :class:`cf_llama2.Tool`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool

from cf_llama2.errors import RequestValidationError
from cf_llama2.tools import Tool, normalize_tool, normalize_tool_choice, normalize_tools

__all__ = ["convert_tool", "convert_tool_choice", "convert_tools"]


_TOOL_FORMS_FIX = (
    "Pass a BaseTool, an @tool function, a typed Python function with a docstring, a pydantic "
    "class, a TypedDict, a JSON schema, or a tool dict."
)


def _is_flat_dict(tool: Mapping[str, Any]) -> bool:
    """A Workers AI flat tool ``{name, description, parameters}`` (not a bare JSON schema)."""
    return isinstance(tool.get("name"), str) and "parameters" in tool and "properties" not in tool


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")


def _strip_titles(schema: Any) -> Any:
    """Drop the ``title`` keywords that JSON schemas generated from classes carry everywhere.

    Titles repeat the property names, cost prompt tokens and make the same tool given as a class
    and as its JSON schema differ. A *property* called ``title`` is kept.
    """
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {k: _strip_titles(v) for k, v in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_strip_titles(v) for v in value]
        elif key in _SUBSCHEMA_ONE:
            out[key] = _strip_titles(value)
        else:
            out[key] = value
    return out


def convert_tool(tool: Any) -> Tool:
    """Convert one ``bind_tools`` input into a :class:`cf_llama2.Tool`.

    Raises:
        RequestValidationError: the input is not a tool LangChain can describe, or its schema
            breaks the model page's rules.
    """
    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, Mapping) and (
        (tool.get("type") == "function" and "function" in tool) or _is_flat_dict(tool)
    ):
        wrapped = normalize_tool(tool)
        return wrapped.model_copy(update={"parameters": _strip_titles(wrapped.parameters)})
    try:
        openai_tool = convert_to_openai_tool(tool)
    except (ValueError, TypeError) as exc:
        kind = type(tool).__name__
        fix = f"bind_tools cannot turn {kind} into a tool ({exc}). {_TOOL_FORMS_FIX}"
        raise RequestValidationError(
            field="tools", limit="a tool LangChain can describe", value=kind, got=kind, fix=fix
        ) from None
    function = dict(openai_tool["function"])
    function["parameters"] = _strip_titles(function.get("parameters") or {})
    return normalize_tool({"type": "function", "function": function})


def convert_tools(tools: Sequence[Any]) -> list[Tool]:
    """Convert every ``bind_tools`` input.

    The same tool given twice (e.g. a pydantic class and its JSON schema) is kept once; two
    different tools with one name raise :class:`~cf_llama2.errors.RequestValidationError`.
    """
    out: list[Tool] = []
    for tool in (convert_tool(t) for t in tools):
        if tool not in out:
            out.append(tool)
    return normalize_tools(out)


def convert_tool_choice(choice: Any, tools: Sequence[Tool]) -> str | None:
    """Map a LangChain ``tool_choice`` onto the core's ``"auto"/"none"/"required"/<name>``.

    ``None`` leaves the default (``"auto"``); every other form is
    :func:`cf_llama2.tools.normalize_tool_choice`'s (``"any"``, ``True``, ``False``, a name, a
    tool, the OpenAI and Anthropic dicts).

    Raises:
        RequestValidationError: an unknown name, ``True`` with several tools, or another shape.
    """
    return None if choice is None else normalize_tool_choice(choice, tools)
