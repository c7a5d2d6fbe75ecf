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
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .reducer import StreamReducer, finish_tool_call
from .schema import FinishReason, InvalidToolCall, TextDelta, ToolCall, ToolCallDelta
from .tools import Tool

__all__ = [
    "ARGUMENT_KEYS",
    "NAME_KEYS",
    "ToolCallStreamParser",
    "calls_from_wire",
    "new_tool_call_id",
    "parse_text",
    "unknown_tool_error",
]

NAME_KEYS = ("name", "function", "tool")
"""Keys that carry the tool name in a call object, in order of preference."""
ARGUMENT_KEYS = ("arguments", "parameters", "tool_input")
"""Keys that carry the arguments in a call object, in order of preference."""
_META_KEYS = ("id", "type")
_MARKERS = ("```", "<tool_call>", "[TOOL_CALLS]")
_FENCE_LANGS = ("", "json", "tool_call", "tool_calls", "tool_code")
_WS = " \t\r\n"
_LITERAL_CHARS = frozenset("0123456789+-.eEtruefalsn")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def new_tool_call_id() -> str:
    """A new, unique tool-call id: ``"call_"`` followed by 24 hex characters.

    The ids are random (uuid4) rather than derived from the response: two identical answers in
    one conversation (the same call made twice) must still get different ids, because tool
    results are matched to calls by id. An id is generated once, when the parser first sees the
    call, so the streamed deltas and the folded result carry the same id.
    """
    return "call_" + uuid.uuid4().hex[:24]


def unknown_tool_error(name: str, tools: Sequence[Tool]) -> str:
    """The error text for a call to a tool that is not in ``tools``."""
    known = ", ".join(t.name for t in tools) or "none"
    return f"unknown tool {name!r}; known: {known}"


def _args_text(value: Any) -> str:
    """The arguments as JSON text: an object as JSON, a string as is (JSON in a string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


# ---------------------------------------------------------------------------------------------
# Structured calls from the wire


def calls_from_wire(raw: Any, tools: Sequence[Tool] = ()) -> list[ToolCall | InvalidToolCall]:
    """Convert the ``tool_calls`` list of a Workers AI result into calls with ids.

    Items are ``{"name", "arguments"}`` where ``arguments`` is an object or a JSON string (an
    OpenAI-style ``{"function": {"name", "arguments"}}`` item is accepted too; an ``id`` on an
    item is kept, else one is generated). Nothing is dropped: an item without a name, with
    arguments that are not valid JSON or not an object, or (with ``tools``) naming an unknown
    tool becomes an :class:`~cf_llama2.schema.InvalidToolCall` with the reason. An ``error``
    string on an item (our extension: a server that judged the call invalid says why) makes it
    invalid with that reason.

    Args:
        raw: the ``tool_calls`` value (``None`` means no calls; a single object is one call).
        tools: when given, call names are checked against these tools.
    """
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        return [
            InvalidToolCall(
                id=new_tool_call_id(),
                arguments=_dump(raw),
                error="tool_calls must be a list of {name, arguments} objects; got "
                + type(raw).__name__,
            )
        ]
    out: list[ToolCall | InvalidToolCall] = []
    for i, item in enumerate(raw):
        out.append(_call_from_wire_item(i, item, tools))
    return out


def _call_from_wire_item(i: int, item: Any, tools: Sequence[Tool]) -> ToolCall | InvalidToolCall:
    if not isinstance(item, Mapping):
        return InvalidToolCall(
            id=new_tool_call_id(),
            arguments=_dump(item),
            error=f"tool_calls[{i}] must be an object {{name, arguments}}; got "
            + type(item).__name__,
        )
    inner: Mapping[str, Any] = item
    if isinstance(item.get("function"), Mapping):
        inner = item["function"]
    given_id = item.get("id")
    call_id = given_id if isinstance(given_id, str) and given_id else new_tool_call_id()
    name = inner.get("name")
    args_value = next((inner[k] for k in ARGUMENT_KEYS if k in inner), None)
    if not isinstance(name, str) or not name:
        return InvalidToolCall(
            id=call_id,
            arguments=_dump(dict(item)),
            error=f"tool_calls[{i}] has no tool name (expected a non-empty string 'name'); "
            f"got {name!r}",
        )
    try:
        args = _args_text(args_value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - wire JSON is always dumpable
        return InvalidToolCall(id=call_id, name=name, arguments=repr(args_value), error=str(exc))
    if tools and name not in {t.name for t in tools}:
        return InvalidToolCall(
            id=call_id, name=name, arguments=args, error=unknown_tool_error(name, tools)
        )
    error = item.get("error")
    return finish_tool_call(
        call_id, name, args, error=error if isinstance(error, str) and error else None
    )


# ---------------------------------------------------------------------------------------------
# An incremental JSON scanner: reports where values and keys start and end


class _JsonScanner:
    """Push JSON text one character at a time; get structural events back.

    Events (tuples): ``("start", depth, char)`` a value begins (``depth`` = number of enclosing
    containers); ``("key", depth, key)`` an object key is complete; ``("end", depth, stop)`` a
    value ended (``stop`` = offset just after it); ``("drop", offset)`` the comma at ``offset``
    was a trailing comma (``[1,]``, ``{"a": 1,}``), accepted and to be left out;
    ``("error", message)`` the text is not JSON (the scanner is then dead). Offsets count
    characters pushed, from 0.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.state = "value"
        self.pos = -1
        self.in_key = False
        self.key: list[str] = []
        self.lit: list[str] = []
        self.hex = 0
        self.comma: int | None = None  # a ',' not yet followed by the next token
        self.failed_in = ""  # the state the scanner was in when it met an error

    def _keep(self, ch: str) -> None:
        if self.in_key:
            self.key.append(ch)

    def push(self, ch: str) -> list[tuple[Any, ...]]:
        self.pos += 1
        out: list[tuple[Any, ...]] = []
        self._step(ch, out)
        return out

    def finish(self) -> list[tuple[Any, ...]]:
        """End of input: a trailing number/literal ends; nothing else can."""
        out: list[tuple[Any, ...]] = []
        if self.state == "literal":
            self._end_literal(out, self.pos + 1)
        return out

    def _error(self, out: list[tuple[Any, ...]], message: str) -> None:
        self.failed_in = self.state
        self.state = "dead"
        out.append(("error", message))

    def _step(self, ch: str, out: list[tuple[Any, ...]]) -> None:
        st = self.state
        if st == "string":
            if ch == '"':
                self._end_string(out)
            elif ch == "\\":
                self.state = "escape"
                self._keep(ch)
            elif ch < " ":
                self._error(out, f"raw control character {ch!r} in a string (escape it)")
            else:
                self._keep(ch)
            return
        if st == "escape":
            if ch in '"\\/bfnrt':
                self.state = "string"
            elif ch == "u":
                self.state, self.hex = "uhex", 0
            else:
                self._error(out, f"invalid escape '\\{ch}' in a string")
                return
            self._keep(ch)
            return
        if st == "uhex":
            if ch in "0123456789abcdefABCDEF":
                self.hex += 1
                self._keep(ch)
                if self.hex == 4:
                    self.state = "string"
            else:
                self._error(out, f"invalid \\u escape: {ch!r} is not a hex digit")
            return
        if st == "literal":
            if ch in _LITERAL_CHARS:
                self.lit.append(ch)
                return
            if not self._end_literal(out, self.pos):
                return
            st = self.state
        if st in ("done", "dead"):
            self._error(out, "text after the end of the JSON value")
            return
        if ch in _WS:
            return
        comma, self.comma = self.comma, None
        if st in ("value", "value_or_end"):
            if ch == "]" and (
                st == "value_or_end" or (comma is not None and self.stack[-1] == "[")
            ):
                if comma is not None:
                    out.append(("drop", comma))
                self.stack.pop()
                self._value_done(out, self.pos + 1)
            else:
                self._start_value(ch, out)
        elif st in ("key_or_end", "key"):
            if ch == '"':
                self.in_key, self.key, self.state = True, [], "string"
            elif ch == "}":
                if comma is not None:
                    out.append(("drop", comma))
                self.stack.pop()
                self._value_done(out, self.pos + 1)
            else:
                self._error(out, f"expected a double-quoted key, got {ch!r}")
        elif st == "colon":
            if ch == ":":
                self.state = "value"
            else:
                self._error(out, f"expected ':' after a key, got {ch!r}")
        elif st == "after":
            top = self.stack[-1]
            close = "}" if top == "{" else "]"
            if ch == ",":
                self.state = "key" if top == "{" else "value"
                self.comma = self.pos
            elif ch == close:
                self.stack.pop()
                self._value_done(out, self.pos + 1)
            else:
                self._error(out, f"expected ',' or {close!r}, got {ch!r}")

    def _start_value(self, ch: str, out: list[tuple[Any, ...]]) -> None:
        depth = len(self.stack)
        if ch == "{":
            out.append(("start", depth, ch))
            self.stack.append("{")
            self.state = "key_or_end"
        elif ch == "[":
            out.append(("start", depth, ch))
            self.stack.append("[")
            self.state = "value_or_end"
        elif ch == '"':
            out.append(("start", depth, ch))
            self.in_key, self.key, self.state = False, [], "string"
        elif ch in "-0123456789tfn":
            out.append(("start", depth, ch))
            self.lit, self.state = [ch], "literal"
        else:
            self._error(out, f"expected a JSON value, got {ch!r}")

    def _end_string(self, out: list[tuple[Any, ...]]) -> None:
        if self.in_key:
            self.in_key = False
            self.state = "colon"
            out.append(("key", len(self.stack), json.loads('"' + "".join(self.key) + '"')))
        else:
            self._value_done(out, self.pos + 1)

    def _end_literal(self, out: list[tuple[Any, ...]], stop: int) -> bool:
        text = "".join(self.lit)
        if text in ("true", "false", "null") or _NUMBER.fullmatch(text):
            self._value_done(out, stop)
            return True
        self._error(out, f"invalid literal {text!r} (JSON has true, false, null and numbers)")
        return False

    def _value_done(self, out: list[tuple[Any, ...]], stop: int) -> None:
        depth = len(self.stack)
        out.append(("end", depth, stop))
        self.state = "done" if depth == 0 else "after"


# ---------------------------------------------------------------------------------------------
# The stream parser


@dataclass
class _CallObj:
    """Recognition state of one JSON object that may be a call."""

    start: int
    phase: str = "undecided"  # undecided | buffered | committed | bad
    name: str | None = None
    name_key: str | None = None
    key: str | None = None
    value_start: int = 0
    index: int = -1
    args_key: str | None = None
    args_start: int | None = None
    args_kind: str = ""
    args_sent: int = 0
    args_done: bool = False


@dataclass
class _Recovery:
    """State while the rest of a broken call is kept with it."""

    index: int = -1
    depth: int = 0
    in_string: bool = False
    escape: bool = False
    newline: bool = False


@dataclass
class _Seen:
    """What the parser emitted for one call index (to compute the final finish reason)."""

    name: str | None
    args: list[str] = field(default_factory=list)
    error: str | None = None


def _interpret(obj: Any) -> tuple[str | None, str, str | None] | None:
    """Decide whether a complete JSON object is a call: ``(name, arguments, error)`` or None."""
    if not isinstance(obj, dict):
        return None
    fn = obj.get("function")
    if isinstance(fn, dict) and set(obj) <= {"function", *_META_KEYS}:
        return _interpret(fn)
    name_key = next((k for k in NAME_KEYS if k in obj), None)
    args_key = next((k for k in ARGUMENT_KEYS if k in obj), None)
    other = set(obj) - {*NAME_KEYS, *ARGUMENT_KEYS, *_META_KEYS}
    if name_key is None or (other and args_key is None):
        return None
    name = obj[name_key]
    args = _args_text(obj[args_key]) if args_key else ""
    if not isinstance(name, str) or not name:
        if args_key is None:
            return None
        return None, args, f"the tool name ({name_key!r}) must be a non-empty string; got {name!r}"
    return name, args, None


class ToolCallStreamParser:
    """Split streamed model text into text deltas and tool-call deltas.

    Text streams out as soon as it cannot be the start of a call; only what could start one is
    held back (trailing whitespace, ``{``, ``[``, ````` `` `````, ``<tool_c``, ``[TOOL_C``, and a
    JSON value until its first keys decide it). Once a call is certain, a
    :class:`~cf_llama2.schema.ToolCallDelta` with its ``index``, a new ``id`` and the ``name`` is
    emitted, then the arguments JSON in fragments whose concatenation is exactly the arguments
    object. Partial JSON never reaches the text. A call the parser finds unusable (unknown tool,
    broken or cut-off JSON) carries ``error`` on one of its deltas.

    Feeding a text in any split and reducing the events gives what :func:`parse_text` gives.

    Args:
        tools: when given, call names are checked against them (an unknown name makes the call
            invalid with ``"unknown tool 'x'; known: a, b"``).
        new_id: the id factory (:func:`new_tool_call_id`; tests may pass a deterministic one).

    Example:
        >>> parser = ToolCallStreamParser()
        >>> events = parser.feed('Sure. {"name": "get_time", "argu')
        >>> events += parser.feed('ments": {"tz": "UTC"}}')
        >>> tail, reason = parser.finish("stop")
        >>> [type(e).__name__ for e in events + tail], reason
        (['TextDelta', 'ToolCallDelta', 'ToolCallDelta'], 'tool_calls')
    """

    def __init__(
        self, tools: Sequence[Tool] = (), *, new_id: Callable[[], str] = new_tool_call_id
    ) -> None:
        self.tools = list(tools)
        self._tool_names = {t.name for t in self.tools}
        self._new_id = new_id
        self._mode = "text"  # text | fence | open | json | post | recover
        self._ws = ""  # whitespace held in text mode
        self._mark = ""  # held prefix of a marker
        self._lead = ""  # held text before a JSON candidate (whitespace, an opening marker)
        self._wrapper: str | None = None  # closing marker expected after calls; "" for none
        self._lang = ""  # a code fence's language tag
        self._raw = ""  # the JSON candidate so far
        self._dropped: list[int] = []  # offsets in _raw of trailing commas to leave out
        self._scan = _JsonScanner()
        self._top = "{"
        self._region = "pending"  # pending | calls | skip
        self._obj: _CallObj | None = None
        self._items = 0  # items seen in the current list of calls
        self._post = ""  # held prefix of a closing marker after a call
        self._post_ws = ""  # whitespace after a call
        self._gap: str | None = None  # whitespace before the first call of a run of calls
        self._text_seen = False  # some non-blank text was emitted
        self._rec = _Recovery()
        self._n = 0
        self._seen: dict[int, _Seen] = {}
        self._cut = False
        self._finished = False
        self._events: list[TextDelta | ToolCallDelta] = []
        self._pend_text: list[str] = []
        self._pend_args: tuple[int, list[str]] | None = None

    # -- output buffering ---------------------------------------------------------------------

    def _flush(self) -> None:
        if self._pend_text:
            self._events.append(TextDelta(text="".join(self._pend_text)))
            self._pend_text = []
        if self._pend_args is not None:
            index, parts = self._pend_args
            self._events.append(ToolCallDelta(index=index, arguments="".join(parts)))
            self._pend_args = None

    def _text(self, s: str) -> None:
        if not s:
            return
        if s.strip():
            self._text_seen = True
            self._gap = None
        if self._pend_args is not None:
            self._flush()
        self._pend_text.append(s)

    def _args(self, index: int, s: str) -> None:
        if not s:
            return
        self._seen[index].args.append(s)
        if self._pend_text or (self._pend_args is not None and self._pend_args[0] != index):
            self._flush()
        if self._pend_args is None:
            self._pend_args = (index, [])
        self._pend_args[1].append(s)

    def _emit_call(self, index: int, name: str | None, error: str | None) -> None:
        self._seen[index] = _Seen(name=name or None, error=error)
        self._flush()
        self._events.append(
            ToolCallDelta(index=index, id=self._new_id(), name=name or None, error=error)
        )

    def _emit_error(self, index: int, error: str) -> None:
        self._seen[index].error = error
        self._flush()
        self._events.append(ToolCallDelta(index=index, error=error))

    def _drain(self) -> list[TextDelta | ToolCallDelta]:
        self._flush()
        events, self._events = self._events, []
        return events

    # -- public API ---------------------------------------------------------------------------

    def feed(self, text: str) -> list[TextDelta | ToolCallDelta]:
        """Add a piece of model text; return the events that are certain now.

        Raises:
            RuntimeError: the parser was already finished.
        """
        if self._finished:
            raise RuntimeError("ToolCallStreamParser.feed() after finish(); make a new parser")
        for ch in text:
            self._char(ch)
        self._stream_arguments()
        return self._drain()

    def finish(
        self, finish_reason: FinishReason = "stop"
    ) -> tuple[list[TextDelta | ToolCallDelta], FinishReason]:
        """End of the stream: flush what was held back and give the final finish reason.

        Held text that did not become a call is emitted as text. A call cut off before its JSON
        was complete stays a call (its deltas were already streamed) and gets an error: with
        ``finish_reason="length"`` the error says generation stopped at ``max_tokens``; with
        ``"stop"`` it says the answer ended early. A call whose arguments are complete but whose
        closing ``}`` is missing is complete.

        Args:
            finish_reason: why generation stopped (``"stop"`` or ``"length"``).

        Returns:
            The last events and the final finish reason: ``"length"`` when ``finish_reason``
            was ``"length"`` and a call was cut off, else ``"tool_calls"`` when a valid call was
            emitted, else ``finish_reason`` (``"stop"`` for an input ``"tool_calls"``).

        Raises:
            RuntimeError: called twice.
        """
        if self._finished:
            raise RuntimeError("ToolCallStreamParser.finish() called twice; make a new parser")
        self._finished = True
        if self._mode == "json":
            for event in self._scan.finish():
                self._on_event(event)
        mode = self._mode
        if mode == "json":
            self._finish_json(finish_reason)
        elif mode == "text":
            self._text(self._ws + self._mark)
        elif mode in ("fence", "open"):
            self._text(self._lead)
        elif mode == "post":
            self._text(self._post)
        elif mode == "recover" and self._rec.newline:
            self._args(self._rec.index, "\n")
        self._ws = self._mark = self._lead = self._post = ""
        events = self._drain()
        valid = any(
            isinstance(finish_tool_call("-", s.name, "".join(s.args), error=s.error), ToolCall)
            for s in self._seen.values()
        )
        final: FinishReason
        if self._cut and finish_reason == "length":
            final = "length"
        elif valid:
            final = "tool_calls"
        else:
            final = "stop" if finish_reason == "tool_calls" else finish_reason
        return events, final

    # -- text, markers and what follows a call ------------------------------------------------

    def _char(self, ch: str) -> None:
        mode = self._mode
        if mode == "text":
            self._text_char(ch)
        elif mode == "json":
            self._json_char(ch)
        elif mode == "post":
            self._post_char(ch)
        elif mode == "recover":
            self._recover_char(ch)
        elif mode == "fence":
            self._fence_char(ch)
        else:
            self._open_char(ch)

    def _text_char(self, ch: str) -> None:
        if self._mark:
            mark = self._mark + ch
            if any(m.startswith(mark) for m in _MARKERS):
                self._mark = mark
                if mark in _MARKERS:
                    self._open_marker(mark)
                return
            if self._mark == "[":  # not "[TOOL_CALLS]": maybe a list of calls
                self._mark = ""
                lead, self._ws = self._ws, ""
                self._start_json("[", lead=lead)
                self._json_char(ch)
                return
            self._text(self._ws + self._mark)
            self._ws = self._mark = ""
        if ch in _WS:
            self._ws += ch
        elif ch == "{":
            lead, self._ws = self._ws, ""
            self._start_json("{", lead=lead)
        elif ch in "`<[":
            self._mark = ch
        else:
            self._text(self._ws + ch)
            self._ws = ""

    def _open_marker(self, mark: str) -> None:
        self._lead = self._ws + mark
        self._ws = self._mark = ""
        if mark == "```":
            self._mode, self._lang = "fence", ""
            self._wrapper = "```"
        else:
            self._mode = "open"
            self._wrapper = "</tool_call>" if mark == "<tool_call>" else ""

    def _release(self, then: str) -> None:
        """The held opening marker is text after all: emit it and go back to text mode."""
        self._text(self._lead)
        self._lead = ""
        self._wrapper = None
        self._mode = "text"
        self._text_char(then)

    def _fence_char(self, ch: str) -> None:
        if ch == "\n" or ch in "{[":
            if self._lang.strip().lower() in _FENCE_LANGS:
                self._mode = "open"
                self._open_char(ch)
            else:
                self._release(then=ch)
        elif (ch.isalnum() or ch in "_-+ \t\r") and len(self._lang) < 20:
            self._lang += ch
            self._lead += ch
        else:
            self._release(then=ch)

    def _open_char(self, ch: str) -> None:
        if ch in _WS:
            self._lead += ch
        elif ch in "{[":
            lead, self._lead = self._lead, ""
            self._start_json(ch, lead=lead)
        else:
            self._release(then=ch)

    def _post_char(self, ch: str) -> None:
        wrapper = self._wrapper
        if wrapper and wrapper.startswith(self._post + ch):
            self._post += ch
            if self._post == wrapper:  # whitespace before the closing marker was inside it
                self._wrapper, self._post, self._post_ws = None, "", ""
            return
        if not self._post and ch in _WS:
            self._post_ws += ch
            return
        if wrapper is not None and not self._post and ch in "{[":
            self._start_json(ch, lead="")  # the next call in the same wrapper
            return
        # Text again. Keep one separator when text came before the calls: "A {call} B" -> "A B".
        pending, self._post = self._post, ""
        self._ws = (self._post_ws or self._gap or "") if self._text_seen else ""
        self._post_ws = ""
        self._wrapper = None
        self._mode = "text"
        for c in pending + ch:
            self._text_char(c)

    def _to_post(self) -> None:
        self._mode, self._post, self._post_ws = "post", "", ""

    # -- JSON candidates ----------------------------------------------------------------------

    def _start_json(self, ch: str, *, lead: str) -> None:
        self._mode = "json"
        self._lead = lead
        self._raw = ""
        self._dropped = []
        self._scan = _JsonScanner()
        self._top = ch
        self._region = "pending"
        self._obj = None
        self._items = 0
        self._json_char(ch)

    def _clean(self, start: int, stop: int) -> str:
        """``_raw[start:stop]`` without the trailing commas that were dropped."""
        text = self._raw[start:stop]
        for offset in reversed(self._dropped):
            if start <= offset < stop:
                text = text[: offset - start] + text[offset - start + 1 :]
        return text

    def _json_char(self, ch: str) -> None:
        events = self._scan.push(ch)
        if events and events[-1][0] == "error":
            for event in events[:-1]:
                self._on_event(event)
            self._on_error(events[-1][1], ch)
            return
        if self._region == "skip":
            self._text(ch)  # plain JSON: text as it comes, no need to keep it
        else:
            self._raw += ch
        for event in events:
            self._on_event(event)
            if self._mode != "json":
                return

    def _stream_arguments(self) -> None:
        """Send the arguments text received so far for the call in progress."""
        obj = self._obj
        if (
            self._mode == "json"
            and obj is not None
            and obj.phase == "committed"
            and obj.args_start is not None
            and obj.args_kind == "{"
            and not obj.args_done
        ):
            upto = len(self._raw)
            comma = self._scan.comma
            if comma is not None and comma >= obj.args_sent:
                upto = comma  # maybe a trailing comma: wait for the next token
            self._args(obj.index, self._clean(obj.args_sent, upto))
            obj.args_sent = upto

    def _call_depth(self) -> int:
        return 1 if self._top == "{" else 2

    def _on_event(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "drop":
            self._dropped.append(event[1])
            return
        depth = event[1]
        if self._region == "skip":
            if kind == "end" and depth == 0:
                self._mode = "text"
            return
        cd = self._call_depth()
        obj = self._obj
        if kind == "start":
            offset = len(self._raw) - 1
            if depth == cd - 1:
                self._items += 1
                if event[2] == "{":
                    self._obj = _CallObj(start=offset)
                elif self._region == "pending":
                    self._to_skip()
                else:
                    self._obj = _CallObj(start=offset, phase="bad")
            elif depth == cd and obj is not None:
                obj.value_start = offset
                if obj.phase == "undecided" and obj.key == obj.name_key and event[2] != '"':
                    obj.phase = "buffered"
                elif (
                    obj.phase == "committed" and obj.key == obj.args_key and obj.args_start is None
                ):
                    obj.args_start = obj.args_sent = offset
                    obj.args_kind = event[2]
        elif kind == "key":
            if depth == cd and obj is not None:
                self._on_key(obj, event[2])
        elif kind == "end":
            stop = event[2]
            if depth == cd and obj is not None:
                self._on_value_end(obj, stop)
            elif depth == cd - 1 and obj is not None:
                self._on_object_end(obj, stop)
            if depth == 0 and self._mode == "json" and self._region != "skip":
                if self._region == "calls":
                    self._to_post()
                else:  # an empty list: text
                    self._text(self._lead + self._raw)
                    self._lead = ""
                    self._mode = "text"

    def _on_key(self, obj: _CallObj, key: str) -> None:
        obj.key = key
        if obj.phase == "undecided":
            if obj.name_key is None:
                if key in NAME_KEYS:
                    obj.name_key = key
                elif key in ARGUMENT_KEYS or key in _META_KEYS:
                    obj.phase = "buffered"
                else:
                    self._not_a_call(obj)
            elif key in ARGUMENT_KEYS:
                obj.args_key = key
                self._commit(obj, obj.name)
            elif key not in _META_KEYS:
                self._not_a_call(obj)
        elif obj.phase == "committed" and key in ARGUMENT_KEYS and obj.args_key is None:
            obj.args_key = key

    def _on_value_end(self, obj: _CallObj, stop: int) -> None:
        if obj.phase == "undecided" and obj.key == obj.name_key and obj.name is None:
            obj.name = json.loads(self._raw[obj.value_start : stop])
        elif (
            obj.phase == "committed"
            and obj.key == obj.args_key
            and obj.args_start is not None
            and not obj.args_done
        ):
            obj.args_done = True
            if obj.args_kind == "{":
                self._args(obj.index, self._clean(obj.args_sent, stop))
            else:
                value = json.loads(self._clean(obj.args_start, stop))
                self._args(obj.index, _args_text(value))
            obj.args_sent = stop

    def _on_object_end(self, obj: _CallObj, stop: int) -> None:
        self._obj = None
        if obj.phase == "bad":
            self._bad_item(obj, stop, "is not a tool call object")
        elif obj.phase == "undecided":
            if obj.name is None:
                self._not_a_call(obj, at_end=True)
            else:
                self._commit(obj, obj.name)
        elif obj.phase == "buffered":
            found = _interpret(json.loads(self._clean(obj.start, stop)))
            if found is None:
                self._not_a_call(obj, at_end=True)
            else:
                name, args, error = found
                self._commit(obj, name, error=error)
                self._args(obj.index, args)

    def _commit(self, obj: _CallObj, name: str | None, *, error: str | None = None) -> None:
        if self._region == "pending":
            self._region = "calls"
            if self._gap is None:
                self._gap = self._lead[: len(self._lead) - len(self._lead.lstrip(_WS))]
            self._lead = ""
        obj.phase = "committed"
        obj.index = self._n
        self._n += 1
        if error is None and name and self._tool_names and name not in self._tool_names:
            error = unknown_tool_error(name, self.tools)
        self._emit_call(obj.index, name, error)

    def _bad_item(self, obj: _CallObj, stop: int, why: str) -> int:
        obj.index = self._n
        self._n += 1
        self._emit_call(obj.index, None, f"item {self._items} of the tool-call list {why}")
        self._args(obj.index, self._raw[obj.start : stop])
        return obj.index

    def _not_a_call(self, obj: _CallObj, *, at_end: bool = False) -> None:
        if self._region == "pending":
            self._to_skip()
        elif at_end:
            self._bad_item(obj, len(self._raw), "is not a tool call object")
        else:
            obj.phase = "bad"

    def _to_skip(self) -> None:
        """The candidate is plain JSON: it is text, in full; stream the rest as text."""
        self._text(self._lead + self._raw)
        self._lead = ""
        self._wrapper = None
        self._region = "skip"
        self._obj = None
        if self._scan.state == "done":
            self._mode = "text"

    # -- broken and cut-off JSON --------------------------------------------------------------

    def _on_error(self, message: str, ch: str) -> None:
        obj = self._obj
        error = f"the tool call is not valid JSON: {message} (at char {len(self._raw)} of the call)"
        self._obj = None
        if self._region == "skip":
            self._mode = "text"
        elif obj is not None and obj.phase == "committed" and obj.args_done:
            # Complete arguments, junk after them: the call stands, the junk is text.
            self._wrapper = None
            self._mode = "text"
        elif obj is not None and obj.phase == "committed":
            if obj.args_start is not None:
                self._args(obj.index, self._clean(obj.args_sent, len(self._raw)))
            self._emit_error(obj.index, error)
            self._recover(obj.index, ch)
            return
        elif obj is not None and obj.phase == "undecided" and obj.name is not None:
            self._commit(obj, obj.name, error=error)
            self._args(obj.index, self._raw[obj.start :])
            self._recover(obj.index, ch)
            return
        elif obj is not None and self._region == "calls":
            index = self._bad_item(obj, len(self._raw), f"is not valid JSON: {message}")
            self._recover(index, ch)
            return
        else:
            if self._region == "pending":
                self._text(self._lead + self._raw)
            self._wrapper = None
            self._mode = "text"
        self._lead = ""
        self._text_char(ch)

    def _recover(self, index: int, ch: str) -> None:
        """Keep the rest of a broken call with it, up to its closing bracket or a blank line."""
        self._lead = ""
        self._mode = "recover"
        self._rec = _Recovery(
            index=index,
            depth=len(self._scan.stack),
            in_string=self._scan.failed_in in ("string", "escape", "uhex"),
        )
        self._recover_char(ch)

    def _recover_char(self, ch: str) -> None:
        rec = self._rec
        if rec.newline:
            rec.newline = False
            if ch == "\n":  # a blank line ends the broken call
                self._to_post()
                self._post_ws = "\n\n"
                return
            self._args(rec.index, "\n")
        if ch == "\n":
            rec.newline = True
            return
        self._args(rec.index, ch)
        if rec.in_string:
            if rec.escape:
                rec.escape = False
            elif ch == "\\":
                rec.escape = True
            elif ch == '"':
                rec.in_string = False
        elif ch == '"':
            rec.in_string = True
        elif ch in "{[":
            rec.depth += 1
        elif ch in "}]":
            rec.depth -= 1
            if rec.depth <= 0:
                self._to_post()

    def _finish_json(self, finish_reason: FinishReason) -> None:
        obj = self._obj
        self._obj = None
        cut_by = (
            "generation stopped at max_tokens (finish_reason='length') before its JSON was "
            "complete; raise max_tokens"
            if finish_reason == "length"
            else "the answer ended before its JSON was complete"
        )
        if self._region == "skip":
            pass
        elif obj is not None and obj.phase == "committed":
            if obj.args_start is None or not obj.args_done:
                if obj.args_start is not None:
                    self._args(obj.index, self._clean(obj.args_sent, len(self._raw)))
                self._emit_error(obj.index, f"the tool call was cut off: {cut_by}")
                self._cut = True
            # else: only the closing brace is missing; the call is complete.
        elif obj is not None and obj.phase == "undecided" and obj.name is not None:
            self._commit(obj, obj.name, error=f"the tool call was cut off: {cut_by}")
            self._args(obj.index, self._raw[obj.start :])
            self._cut = True
        elif obj is not None and self._region == "calls":
            self._bad_item(obj, len(self._raw), f"was cut off: {cut_by}")
            self._cut = True
        elif self._region == "pending":
            self._text(self._lead + self._raw)
        self._lead = ""


def parse_text(
    text: str, tools: Sequence[Tool] = ()
) -> tuple[str, list[ToolCall | InvalidToolCall]]:
    """Find the tool calls in a complete model answer.

    Args:
        text: the model's answer.
        tools: when given, call names are checked against them.

    Returns:
        The text outside the calls and the calls (valid and invalid, in the order written).
    """
    parser = ToolCallStreamParser(tools)
    events = parser.feed(text)
    tail, _ = parser.finish("stop")
    reducer = StreamReducer()
    for event in [*events, *tail]:
        reducer.feed(event)
    calls = [
        finish_tool_call(part.id or new_tool_call_id(), part.name, part.arguments, error=part.error)
        for _, part in sorted(reducer.calls.items())
    ]
    return "".join(reducer.text), calls
