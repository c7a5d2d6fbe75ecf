"""Tool-call parsing: structured wire calls, calls in model text, and an incremental stream parser.

Two sources of tool calls:

* **structured** -- the ``tool_calls`` list of a Workers AI result (``{"name", "arguments"}``
  items without ids): :func:`calls_from_wire`;
* **model text** -- Llama 2 writes calls as JSON in its answer: :func:`parse_text` for a whole
  answer, :class:`ToolCallStreamParser` for a stream. ``parse_text`` is the stream parser fed the
  whole text at once, so a streamed answer and a non-streamed one always agree.

What counts as a call in text:

* a JSON object whose first key is ``"name"`` (or ``"function"``/``"tool"``) with a string value,
  followed by ``"arguments"`` (or ``"parameters"``/``"tool_input"``); ``"id"`` and ``"type"``
  keys are allowed; an object with only the name is a call without arguments;
* the same keys in another order, and the OpenAI shape ``{"type": "function", "function":
  {"name", "arguments"}}``, recognised once the object is complete;
* a JSON list whose first item is such an object (every item is then a call; an item that is not
  becomes an :class:`~cf_llama2.schema.InvalidToolCall`);
* any of those inside a code fence (````` ```json ````` or bare ````` ``` `````), inside
  ``<tool_call>...</tool_call>`` tags, or after ``[TOOL_CALLS]``; the markers are dropped;
* anywhere in the text: ``"Sure! Here is the call: {...}"`` gives the text ``"Sure! Here is the
  call:"`` and the call.

Lenient where it is safe: whitespace and markers around calls, ``"arguments"`` given as a JSON
string holding the object (decoded), ``"arguments": null`` (no arguments), trailing commas
(``{"a": 1,}`` -- left out of the streamed arguments, so they stay valid JSON), a missing final
``}`` after complete arguments. Explicit where it is not: JSON that started as a call but breaks
(a missing comma, an unquoted value, a raw newline inside a string, ...) is an
:class:`~cf_llama2.schema.InvalidToolCall` whose error names the problem and the position; the
rest of the broken call, up to its closing bracket or a blank line, stays with it instead of
leaking into the text. With ``tools`` given, a name that is not a tool is an
``InvalidToolCall("unknown tool 'x'; known: a, b")``. JSON that is not a call (no name key, other
keys before the arguments, single-quoted Python dicts) stays text, in full and unchanged.
Arguments must be a JSON object; validating them against the tool's schema is left to the tool
(the local backend's grammar already guarantees it).

Whitespace next to a call belongs to the call; when text comes both before and after calls, one
separator is kept (``"A {call} B"`` gives ``"A B"``).

This module is the public API; the code lives in :mod:`cf_llama2.tool_calls.shape` (keys, ids,
error texts), :mod:`cf_llama2.tool_calls.wire` (:func:`calls_from_wire`) and
:mod:`cf_llama2.tool_calls.parser` (:class:`ToolCallStreamParser`, :func:`parse_text`; its
docstring describes the parser's layers and what flows between them).
"""

from __future__ import annotations

from .parser import ToolCallStreamParser, parse_text
from .shape import ARGUMENT_KEYS, NAME_KEYS, new_tool_call_id, unknown_tool_error
from .wire import calls_from_wire

__all__ = [
    "ARGUMENT_KEYS",
    "NAME_KEYS",
    "ToolCallStreamParser",
    "calls_from_wire",
    "new_tool_call_id",
    "parse_text",
    "unknown_tool_error",
]
