"""The stream parser's JSON layer: is this JSON a tool call, its streamed arguments, broken JSON.

A JSON candidate (an object or a list that may hold calls) is pushed through the
:class:`~cf_llama2.tool_calls._json_scan.JsonScanner`; its first keys decide whether it is a
call (the name
key first commits it at once; other orders and the OpenAI shape are buffered until the object is
complete), plain JSON is released as text in full, and the arguments of a committed call stream
out as they arrive. JSON that breaks after it started as a call stays with the call (up to its
closing bracket or a blank line) and makes it invalid; a call cut off by the end of the stream
is invalid with the reason.
"""

from __future__ import annotations

import json

from ..schema import FinishReason
from ._json_scan import WHITESPACE, Drop, End, JsonScanner, Key, ScanError, ScanEvent, Start
from ._state import CallObj, Recovery, StreamState
from .shape import (
    ARGUMENT_KEYS,
    META_KEYS,
    NAME_KEYS,
    args_text,
    interpret_call_object,
    unknown_tool_error,
)

__all__ = ["JsonCandidates"]


class JsonCandidates(StreamState):
    """Recognition of calls in JSON candidates (the parser's ``json`` and ``recover`` modes)."""

    # -- JSON candidates ----------------------------------------------------------------------

    def _start_json(self, ch: str, *, lead: str) -> None:
        self._mode = "json"
        self._lead = lead
        self._raw = ""
        self._dropped = []
        self._scan = JsonScanner()
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
        if events and isinstance(events[-1], ScanError):
            for event in events[:-1]:
                self._on_event(event)
            self._on_error(events[-1].message, ch)
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

    def _skipping(self) -> bool:
        return self._region == "skip"

    def _call_depth(self) -> int:
        return 1 if self._top == "{" else 2

    def _on_event(self, event: ScanEvent) -> None:
        if isinstance(event, Drop):
            self._dropped.append(event.offset)
            return
        if isinstance(event, ScanError):
            return
        depth = event.depth
        if self._region == "skip":
            if isinstance(event, End) and depth == 0:
                self._mode = "text"
            return
        cd = self._call_depth()
        obj = self._obj
        if isinstance(event, Start):
            offset = len(self._raw) - 1
            if depth == cd - 1:
                self._items += 1
                if event.char == "{":
                    self._obj = CallObj(start=offset)
                elif self._region == "pending":
                    self._to_skip()
                else:
                    self._obj = CallObj(start=offset, phase="bad")
            elif depth == cd and obj is not None:
                obj.value_start = offset
                if obj.phase == "undecided" and obj.key == obj.name_key and event.char != '"':
                    obj.phase = "buffered"
                elif (
                    obj.phase == "committed" and obj.key == obj.args_key and obj.args_start is None
                ):
                    obj.args_start = obj.args_sent = offset
                    obj.args_kind = event.char
        elif isinstance(event, Key):
            if depth == cd and obj is not None:
                self._on_key(obj, event.key)
        else:
            stop = event.stop
            if depth == cd and obj is not None:
                self._on_value_end(obj, stop)
            elif depth == cd - 1 and obj is not None:
                self._on_object_end(obj, stop)
            # (the handlers above may have switched the region to "skip")
            if depth == 0 and self._mode == "json" and not self._skipping():
                if self._region == "calls":
                    self._to_post()
                else:  # an empty list: text
                    self._text(self._lead + self._raw)
                    self._lead = ""
                    self._mode = "text"

    def _on_key(self, obj: CallObj, key: str) -> None:
        obj.key = key
        if obj.phase == "undecided":
            if obj.name_key is None:
                if key in NAME_KEYS:
                    obj.name_key = key
                elif key in ARGUMENT_KEYS or key in META_KEYS:
                    obj.phase = "buffered"
                else:
                    self._not_a_call(obj)
            elif key in ARGUMENT_KEYS:
                obj.args_key = key
                self._commit(obj, obj.name)
            elif key not in META_KEYS:
                self._not_a_call(obj)
        elif obj.phase == "committed" and key in ARGUMENT_KEYS and obj.args_key is None:
            obj.args_key = key

    def _on_value_end(self, obj: CallObj, stop: int) -> None:
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
                self._args(obj.index, args_text(value))
            obj.args_sent = stop

    def _on_object_end(self, obj: CallObj, stop: int) -> None:
        self._obj = None
        if obj.phase == "bad":
            self._bad_item(obj, stop, "is not a tool call object")
        elif obj.phase == "undecided":
            if obj.name is None:
                self._not_a_call(obj, at_end=True)
            else:
                self._commit(obj, obj.name)
        elif obj.phase == "buffered":
            found = interpret_call_object(json.loads(self._clean(obj.start, stop)))
            if found is None:
                self._not_a_call(obj, at_end=True)
            else:
                name, args, error = found
                self._commit(obj, name, error=error)
                self._args(obj.index, args)

    def _commit(self, obj: CallObj, name: str | None, *, error: str | None = None) -> None:
        if self._region == "pending":
            self._region = "calls"
            if self._gap is None:
                self._gap = self._lead[: len(self._lead) - len(self._lead.lstrip(WHITESPACE))]
            self._lead = ""
        obj.phase = "committed"
        obj.index = self._n
        self._n += 1
        if error is None and name and self._tool_names and name not in self._tool_names:
            error = unknown_tool_error(name, self.tools)
        self._emit_call(obj.index, name, error)

    def _bad_item(self, obj: CallObj, stop: int, why: str) -> int:
        obj.index = self._n
        self._n += 1
        self._emit_call(obj.index, None, f"item {self._items} of the tool-call list {why}")
        self._args(obj.index, self._raw[obj.start : stop])
        return obj.index

    def _not_a_call(self, obj: CallObj, *, at_end: bool = False) -> None:
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

    def _to_post(self) -> None:
        """A call (or a run of them) ended: look at what follows it."""
        self._mode, self._post, self._post_ws = "post", "", ""

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
        self._rec = Recovery(
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
