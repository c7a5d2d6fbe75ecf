"""LlamaIndex tools -> core tools, and ``tool_choice`` / ``tool_required`` -> one core choice.

Pure functions. LlamaIndex tools (``FunctionTool``, ``QueryEngineTool``, any ``BaseTool``) are
converted through their metadata's ``to_openai_tool()``, which is the function-wrapped form that
:func:`cf_llama2.tools.normalize_tool` accepts; flat and function-wrapped dicts and core
:class:`~cf_llama2.tools.Tool` objects are accepted as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cf_llama2.errors import RequestValidationError
from cf_llama2.tools import Tool, normalize_tool, normalize_tool_choice, unique_tools

__all__ = ["resolve_tool_choice", "to_core_tool", "to_core_tools"]


_TOOL_FORMS = (
    "a LlamaIndex tool (FunctionTool, QueryEngineTool, any BaseTool), a flat dict "
    "{name, description, parameters} or a function-wrapped dict {type: 'function', function: {...}}"
)


def to_core_tool(tool: Any) -> Tool:
    """Convert one LlamaIndex tool, tool dict or core tool into a core :class:`Tool`.

    Nested models (``$defs``/``$ref``) are written out by :func:`cf_llama2.tools.normalize_tool`.

    Args:
        tool: a LlamaIndex ``BaseTool`` (anything with ``metadata.to_openai_tool()``), a flat
            ``{name, description, parameters}`` dict, a function-wrapped
            ``{type: "function", function: {...}}`` dict, or a :class:`Tool`.

    Raises:
        RequestValidationError: the object is none of those, or its schema is invalid.
    """
    if isinstance(tool, Tool):
        return tool
    if isinstance(tool, Mapping):
        return normalize_tool(tool)
    metadata = getattr(tool, "metadata", None)
    to_openai_tool = getattr(metadata, "to_openai_tool", None)
    if callable(to_openai_tool):
        spec = to_openai_tool(skip_length_check=True)
        return normalize_tool(spec)
    kind = type(tool).__name__
    fix = "Wrap plain functions with llama_index.core.tools.FunctionTool.from_defaults(fn)."
    raise RequestValidationError(field="tools", limit=_TOOL_FORMS, value=kind, got=kind, fix=fix)


def to_core_tools(tools: Iterable[Any] | None) -> list[Tool]:
    """Convert a list of tools with :func:`to_core_tool`; names must be unique.

    Raises:
        RequestValidationError: a tool cannot be converted or two tools share a name.
    """
    return unique_tools(to_core_tool(t) for t in (tools or []))


def resolve_tool_choice(tool_choice: Any, tool_required: bool, tools: Sequence[Tool]) -> str:
    """The core ``tool_choice`` for LlamaIndex's ``tool_choice`` and ``tool_required``.

    ``tool_required=True`` forces a call (``"required"``) unless ``tool_choice`` already names the
    tool to call. A named tool must be one of ``tools``.

    Args:
        tool_choice: ``None``, a keyword (``"auto"``, ``"none"``, ``"required"``, ``"any"``), a
            tool name, or a dict naming a tool.
        tool_required: whether the model must call a tool.
        tools: the converted tools of the request.

    Raises:
        RequestValidationError: an unknown tool name, ``tool_required`` with
            ``tool_choice="none"``, or a forced call without tools.
    """
    choice = normalize_tool_choice(tool_choice)  # the form; the tools are checked below
    if tool_required:
        if choice == "none":
            fix = "tool_required=True contradicts tool_choice='none': drop one of them."
            raise RequestValidationError(
                field="tool_choice",
                limit="not 'none' when tool_required=True",
                value=choice,
                fix=fix,
            )
        if choice == "auto":
            choice = "required"
    return normalize_tool_choice(choice, tools)
