"""Tool definitions: the flat and the function-wrapped forms -> one canonical :class:`Tool`.

Workers AI accepts two tool shapes in ``tools``:

* flat: ``{"name", "description", "parameters": {...}}``
* function-wrapped: ``{"type": "function", "function": {"name", "description", "parameters"}}``

and the separate ``functions`` list of ``{"name", "code"}``. :func:`normalize_tool` accepts either
tool form and returns a :class:`Tool`; :meth:`Tool.to_wire` renders either form back, filling what
the model page's schema requires (every property needs ``type`` and ``description``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import RequestValidationError
from ._refs import inline_refs
from ._validation import from_pydantic

__all__ = [
    "FunctionDef",
    "Tool",
    "ToolFormat",
    "normalize_functions",
    "normalize_tool",
    "normalize_tool_choice",
    "normalize_tools",
    "unique_tools",
    "validate_parameters",
]

ToolFormat = Literal["function", "flat"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


_WRAPPED_FIX = "A wrapped tool must have type 'function'."
_TOOL_FORMS = (
    "a dict in the flat form {name, description, parameters} or the function-wrapped form "
    "{type: 'function', function: {...}}"
)


def _bad(field: str, limit: str, given: Any) -> RequestValidationError:
    """The error for a value of the wrong kind (the message names its type)."""
    kind = type(given).__name__
    return RequestValidationError(field=field, limit=limit, value=kind, got=kind)


def validate_parameters(parameters: Any, *, tool: str = "") -> dict[str, Any]:
    """Check a tool's parameters JSON schema and return a normalised copy.

    Local ``$ref`` pointers are written out first (:func:`cf_llama2.tools._refs.inline_refs`), so
    the result is self-contained. Rules (each violation raises :class:`RequestValidationError`
    naming the tool and the key):
    ``type`` is ``"object"`` (added when missing), ``properties`` is a mapping of schemas (empty
    when missing), ``required`` is a list of names that all appear in ``properties``.
    """
    where = f"tools[{tool}].parameters" if tool else "parameters"
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise _bad(
            where, 'a JSON-schema object like {"type": "object", "properties": {...}}', parameters
        )
    params = inline_refs(copy.deepcopy(dict(parameters)), tool=tool)
    kind = params.setdefault("type", "object")
    if kind != "object":
        fix = "Tool arguments are always a JSON object: wrap the value in an object property."
        raise RequestValidationError(field=f"{where}.type", limit="'object'", value=kind, fix=fix)
    props = params.setdefault("properties", {})
    if not isinstance(props, Mapping):
        raise _bad(f"{where}.properties", "a mapping of parameter name -> JSON schema", props)
    for pname, pschema in props.items():
        if not isinstance(pschema, Mapping):
            raise _bad(f"{where}.properties.{pname}", "a JSON schema object", pschema)
        ptype = pschema.get("type")
        types = ptype if isinstance(ptype, list) else [ptype] if ptype is not None else []
        if any(t not in _JSON_TYPES for t in types):
            limit = f"a JSON-schema type ({', '.join(sorted(_JSON_TYPES))})"
            raise RequestValidationError(
                field=f"{where}.properties.{pname}.type", limit=limit, value=ptype
            )
    required = params.get("required", [])
    if required is None:
        required = []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise RequestValidationError(
            field=f"{where}.required", limit="a list of property names", value=required
        )
    missing = [r for r in required if r not in props]
    if missing:
        fix = f"{missing} are not in properties ({sorted(props)}): add them there or drop them"
        limit = "a subset of the property names"
        raise RequestValidationError(field=f"{where}.required", limit=limit, value=missing, fix=fix)
    if required:
        params["required"] = list(required)
    else:
        params.pop("required", None)
    return params


def _wire_property(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A property schema that satisfies the model page: ``type`` and ``description`` present."""
    out = dict(schema)
    if "type" not in out or isinstance(out["type"], list):
        out["type"] = _infer_type(schema)
    if not isinstance(out.get("description"), str):
        out["description"] = str(out.get("title") or name)
    return out


def _infer_type(schema: Mapping[str, Any]) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        non_null = [x for x in t if x != "null"]
        return str(non_null[0]) if non_null else "null"
    if isinstance(t, str):
        return t
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for opt in options:
                if isinstance(opt, Mapping) and opt.get("type") not in (None, "null"):
                    return _infer_type(opt)
    if schema.get("enum"):
        first = schema["enum"][0]
        return {bool: "boolean", int: "integer", float: "number"}.get(type(first), "string")
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


class Tool(BaseModel):
    """The canonical tool: a name, a description and a JSON schema for the arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(
                f"tool name {v!r} must be 1..64 characters of letters, digits, '_', '.' or '-'"
            )
        return v

    def to_wire(self, form: ToolFormat = "function") -> dict[str, Any]:
        """Render the tool in one of the two Workers AI forms.

        Args:
            form: ``"function"`` for ``{"type": "function", "function": {...}}`` or ``"flat"``.
        """
        props = self.parameters.get("properties", {})
        params: dict[str, Any] = {
            "type": "object",
            "properties": {k: _wire_property(k, v) for k, v in props.items()},
        }
        if self.parameters.get("required"):
            params["required"] = list(self.parameters["required"])
        for key, value in self.parameters.items():
            if key not in ("type", "properties", "required"):
                params[key] = value
        body = {"name": self.name, "description": self.description, "parameters": params}
        if form == "flat":
            return body
        return {"type": "function", "function": body}


class FunctionDef(BaseModel):
    """An entry of the Workers AI ``functions`` list: a name and the code that implements it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    code: str


def normalize_tool(tool: Any) -> Tool:
    """Accept a :class:`Tool`, a flat dict or a function-wrapped dict; return a :class:`Tool`.

    Args:
        tool: a ``Tool``, a Workers AI flat ``{"name", "description", "parameters"}`` dict or
            an OpenAI-style ``{"type": "function", "function": {...}}`` dict.

    Returns:
        The canonical ``Tool``, its ``$ref`` pointers resolved.

    Raises:
        RequestValidationError: the shape is neither form, or the parameters schema is invalid.
    """
    if isinstance(tool, Tool):
        return tool
    if not isinstance(tool, Mapping):
        kind = type(tool).__name__
        fix = "Framework tools are converted by the adapters' bind_tools."
        raise RequestValidationError(
            field="tools", limit=_TOOL_FORMS, value=kind, got=kind, fix=fix
        )
    if "function" in tool:
        kind = tool.get("type", "function")
        if kind != "function":
            raise RequestValidationError(
                field="tools.type", limit="'function'", value=kind, fix=_WRAPPED_FIX
            )
        inner = tool["function"]
        if not isinstance(inner, Mapping):
            kind = type(inner).__name__
            limit = "a dict {name, description, parameters}"
            raise RequestValidationError(field="tools.function", limit=limit, value=kind, got=kind)
    else:
        inner = tool
    name = inner.get("name")
    if not isinstance(name, str) or not name:
        fix = "Every tool needs a non-empty 'name'."
        raise RequestValidationError(
            field="tools.name", limit="a non-empty string", value=name, fix=fix
        )
    description = inner.get("description") or ""
    if not isinstance(description, str):
        kind = type(description).__name__
        raise RequestValidationError(
            field=f"tools[{name}].description", limit="a string", value=kind, got=kind
        )
    params = validate_parameters(inner.get("parameters"), tool=name)
    try:
        return Tool(name=name, description=description, parameters=params)
    except ValidationError as exc:
        raise from_pydantic(exc, model="tool") from None


def unique_tools(tools: Iterable[Tool]) -> list[Tool]:
    """Return ``tools`` as a list after checking that no two share a name.

    Raises:
        RequestValidationError: a name is used twice.
    """
    out = list(tools)
    seen: set[str] = set()
    for t in out:
        if t.name in seen:
            got = f"{t.name!r} used twice"
            raise RequestValidationError(
                field="tools", limit="a list with unique names", value=t.name, got=got
            )
        seen.add(t.name)
    return out


def _as_list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        kind = type(value).__name__
        raise RequestValidationError(field=field, limit="a list (JSON array)", value=kind, got=kind)
    return list(value)


def normalize_tools(tools: Iterable[Any] | None) -> list[Tool]:
    """Normalise a list of tools; names must be unique.

    Raises:
        RequestValidationError: ``tools`` is not a list, or a tool is malformed.
    """
    return unique_tools(normalize_tool(t) for t in _as_list(tools, "tools"))


def normalize_functions(functions: Iterable[Any] | None) -> list[FunctionDef]:
    """Normalise the ``functions`` list (``{name, code}`` entries)."""
    out: list[FunctionDef] = []
    for f in _as_list(functions, "functions"):
        if isinstance(f, FunctionDef):
            out.append(f)
            continue
        try:
            out.append(FunctionDef.model_validate(f))
        except ValidationError as exc:
            raise from_pydantic(exc, model="functions entry") from None
    return out


_CHOICE_WORDS = {"auto": "auto", "none": "none", "required": "required", "any": "required"}
_CHOICE_FORMS = (
    "'auto', 'any'/'required', 'none', a tool name, True, a tool, or "
    "{'type': 'function', 'function': {'name': ...}}"
)


def _choice_name(choice: Any) -> Any:
    """The name or keyword a ``tool_choice`` value carries (``None`` when it has none)."""
    if isinstance(choice, str):
        return choice.strip()
    if isinstance(choice, Mapping):
        kind, function = choice.get("type"), choice.get("function")
        if kind == "function" and isinstance(function, Mapping):
            return function.get("name")
        if kind in ("function", "tool"):
            return choice.get("name")
        return kind if kind in _CHOICE_WORDS else None
    if isinstance(choice, Tool):
        return choice.name
    name = getattr(getattr(choice, "metadata", None), "name", None) or getattr(choice, "name", None)
    return name if isinstance(name, str) else None


def normalize_tool_choice(choice: Any, tools: Sequence[Tool] | None = None) -> str:
    """Turn any ``tool_choice`` users pass into ``"auto"``, ``"none"``, ``"required"`` or a name.

    Accepts ``None``/``"auto"``, ``"none"``/``False``, ``"required"``/``"any"``, ``True``
    (``"required"``, with exactly one tool), a tool name, a tool object, and the dicts
    ``{"type": "function", "function": {"name": ...}}``, ``{"type": "tool", "name": ...}``,
    ``{"type": "auto" | "any" | "none" | "required"}``.

    Args:
        choice: the value given.
        tools: the tools of the request; when given, a forced call needs one and a name must be
            one of them (``None``: check the form only).

    Raises:
        RequestValidationError: an unknown form, a name that is not a tool, ``True`` without
            exactly one tool, or a forced call without tools.
    """
    names = [t.name for t in tools] if tools is not None else None
    if choice is None or choice is False:
        return "auto" if choice is None else "none"
    if choice is True:
        if names is not None and len(names) != 1:
            got = f"True, but {len(names)} were given ({', '.join(names) or 'none'})"
            fix = "Use tool_choice='any' or a tool name."
            raise RequestValidationError(
                field="tool_choice", limit="True only with one tool", value=True, got=got, fix=fix
            )
        return "required"
    name = _choice_name(choice)
    if not isinstance(name, str) or not name:
        got = repr(choice)
        raise RequestValidationError(field="tool_choice", limit=_CHOICE_FORMS, value=got, got=got)
    word = _CHOICE_WORDS.get(name.lower())
    if names is None or word in ("auto", "none"):
        return word or name
    if not names:
        raise RequestValidationError(
            f"tool_choice={name!r} needs tools; pass tools=[...] or use tool_choice='auto'",
            field="tool_choice",
            value=name,
            limit="at least one tool",
        )
    if word is None and name not in names:
        raise RequestValidationError(
            f"tool_choice={name!r} is not one of the tools ({', '.join(names)}); use 'auto', "
            "'any'/'required', 'none' or one of those names",
            field="tool_choice",
            value=name,
            limit="'auto', 'any', 'required', 'none' or a tool name",
        )
    return word or name
