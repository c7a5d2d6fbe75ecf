"""The stream parser's JSON layer: is this JSON a tool call, its streamed arguments, broken JSON.

A JSON candidate (an object or a list that may hold calls) is pushed through the
:class:`~cf_llama2.tool_calls._json_scan.JsonScanner`; its first keys decide whether it is a
call (the name key first commits it at once; other orders and the OpenAI shape are buffered until
the object is complete), plain JSON is released as text in full, and the arguments of a committed
call stream out as they arrive, through the :class:`~cf_llama2.tool_calls._calls.CallBuilder`.
JSON that breaks after it started as a call makes the call invalid and hands the rest of it to
the broken-call layer (:class:`~cf_llama2.tool_calls._state.Broken`); a call cut off by the end of
the stream is invalid with the reason.
"""

from __future__ import annotations

import json

from ..schema import FinishReason
from ._calls import CallBuilder
from ._events import EventBuffer
from ._json_scan import Drop, End, JsonScanner, Key, ScanError, ScanEvent, Start
from ._state import AfterCalls, Broken, CallObj, JsonStep, Region, ToText
from .shape import ARGUMENT_KEYS, META_KEYS, NAME_KEYS, args_text, interpret_call_object

__all__ = ["JsonCandidate"]


class JsonCandidate:
    """One JSON candidate, from its ``{`` or ``[`` to the step that ends it.

    Push every character of the candidate, its first ``char`` included; :meth:`push` returns
    ``None`` while the candidate goes on, then the :data:`~cf_llama2.tool_calls._state.JsonStep`
    that ends it.

    Args:
        char: the candidate's first character, ``{`` or ``[``.
        lead: the held text before it, released as text with it if it is not a call.
        calls: where calls, their arguments and their errors go.
        out: where text goes.
    """

    def __init__(self, char: str, lead: str, calls: CallBuilder, out: EventBuffer) -> None:
        self._calls = calls
        self._out = out
        self._lead = lead
        self._call_depth = 1 if char == "{" else 2  # the depth of the keys of a call object
        self._raw = ""  # the candidate so far (not kept once it is plain JSON)
        self._dropped: list[int] = []  # offsets in _raw of trailing commas to leave out
        self._scan = JsonScanner()
        self._region: Region = "pending"
        self._obj: CallObj | None = None
        self._items = 0  # items seen in the list of calls
        self._exit: JsonStep = None

    # -- interface to the parser --------------------------------------------------------------

    def push(self, ch: str) -> JsonStep:
        """Read one character of the candidate."""
        events = self._scan.push(ch)
        if events and isinstance(events[-1], ScanError):
            for event in events[:-1]:
                self._on_event(event)
            return self._on_error(events[-1].message, ch)
        if self._region == "skip":
            self._out.text(ch)  # plain JSON: text as it comes, no need to keep it
        else:
            self._raw += ch
        for event in events:
            self._on_event(event)
            if self._exit is not None:
                return self._exit
        return None

    def stream_arguments(self) -> None:
        """Send the arguments text received so far for the call in progress."""
        obj = self._obj
        if (
            obj is not None
            and obj.phase == "committed"
            and obj.args_start is not None
            and obj.args_kind == "{"
            and not obj.args_done
        ):
            upto = len(self._raw)
            comma = self._scan.comma
            if comma is not None and comma >= obj.args_sent:
                upto = comma  # maybe a trailing comma: wait for the next token
            self._calls.args(obj.index, self._clean(obj.args_sent, upto))
            obj.args_sent = upto

    def finish(self, finish_reason: FinishReason) -> None:
        """End of the stream inside the candidate: release it as text or cut its call off."""
        for event in self._scan.finish():
            self._on_event(event)
        if self._exit is None:
            self._cut_off(finish_reason)

    # -- scanner events -----------------------------------------------------------------------

    def _clean(self, start: int, stop: int) -> str:
        """``_raw[start:stop]`` without the trailing commas that were dropped."""
        text = self._raw[start:stop]
        for offset in reversed(self._dropped):
            if start <= offset < stop:
                text = text[: offset - start] + text[offset - start + 1 :]
        return text

    def _on_event(self, event: ScanEvent) -> None:
        if isinstance(event, Drop):
            self._dropped.append(event.offset)
        elif isinstance(event, ScanError):
            return
        elif self._region == "skip":
            if isinstance(event, End) and event.depth == 0:
                self._exit = ToText(clear_wrapper=True)
        elif isinstance(event, Start):
            self._on_start(event)
        elif isinstance(event, Key):
            if event.depth == self._call_depth and self._obj is not None:
                self._on_key(self._obj, event.key)
        else:
            self._on_end(event)

    def _on_start(self, event: Start) -> None:
        cd = self._call_depth
        obj = self._obj
        offset = len(self._raw) - 1
        if event.depth == cd - 1:
            self._items += 1
            if event.char == "{":
                self._obj = CallObj(start=offset)
            elif self._region == "pending":
                self._to_skip()
            else:
                self._obj = CallObj(start=offset, phase="bad")
        elif event.depth == cd and obj is not None:
            obj.value_start = offset
            if obj.phase == "undecided" and obj.key == obj.name_key and event.char != '"':
                obj.phase = "buffered"
            elif obj.phase == "committed" and obj.key == obj.args_key and obj.args_start is None:
                obj.args_start = obj.args_sent = offset
                obj.args_kind = event.char

    def _on_end(self, event: End) -> None:
        cd = self._call_depth
        obj = self._obj
        if event.depth == cd and obj is not None:
            self._on_value_end(obj, event.stop)
        elif event.depth == cd - 1 and obj is not None:
            self._on_object_end(obj, event.stop)
        # (the handlers above may have ended the candidate as plain JSON)
        if event.depth == 0 and self._exit is None and self._region != "skip":
            if self._region == "calls":
                self._exit = AfterCalls()
            else:  # an empty list: text
                self._out.text(self._lead + self._raw)
                self._lead = ""
                self._exit = ToText(clear_wrapper=False)

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
                self._calls.args(obj.index, self._clean(obj.args_sent, stop))
            else:
                value = json.loads(self._clean(obj.args_start, stop))
                self._calls.args(obj.index, args_text(value))
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
                self._calls.args(obj.index, args)

    # -- what the candidate is ------------------------------------------------------------------

    def _commit(self, obj: CallObj, name: str | None, *, error: str | None = None) -> None:
        if self._region == "pending":
            self._region = "calls"
            self._out.note_gap(self._lead)
            self._lead = ""
        obj.phase = "committed"
        obj.index = self._calls.open(name, error)

    def _bad_item(self, obj: CallObj, stop: int, why: str) -> int:
        obj.index = self._calls.open(None, f"item {self._items} of the tool-call list {why}")
        self._calls.args(obj.index, self._raw[obj.start : stop])
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
        self._out.text(self._lead + self._raw)
        self._lead = ""
        self._region = "skip"
        self._obj = None
        if self._scan.state == "done":
            self._exit = ToText(clear_wrapper=True)

    # -- broken and cut-off JSON --------------------------------------------------------------

    def _on_error(self, message: str, ch: str) -> JsonStep:
        obj = self._obj
        error = f"the tool call is not valid JSON: {message} (at char {len(self._raw)} of the call)"
        self._obj = None
        if self._region == "skip" or obj is None:
            pass
        elif obj.phase == "committed" and obj.args_done:
            pass  # complete arguments, junk after them: the call stands, the junk is text
        elif obj.phase == "committed":
            if obj.args_start is not None:
                self._calls.args(obj.index, self._clean(obj.args_sent, len(self._raw)))
            self._calls.fail(obj.index, error)
            return self._broken(obj.index, ch)
        elif obj.phase == "undecided" and obj.name is not None:
            self._commit(obj, obj.name, error=error)
            self._calls.args(obj.index, self._raw[obj.start :])
            return self._broken(obj.index, ch)
        elif self._region == "calls":
            index = self._bad_item(obj, len(self._raw), f"is not valid JSON: {message}")
            return self._broken(index, ch)
        if self._region == "pending":
            self._out.text(self._lead + self._raw)
        self._lead = ""
        return ToText(clear_wrapper=True, refeed=ch)

    def _broken(self, index: int, ch: str) -> Broken:
        """Keep the rest of the broken call ``index`` with it, from ``ch`` on."""
        in_string = self._scan.failed_in in ("string", "escape", "uhex")
        return Broken(index, len(self._scan.stack), in_string, ch)

    def _cut_off(self, finish_reason: FinishReason) -> None:
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
                    self._calls.args(obj.index, self._clean(obj.args_sent, len(self._raw)))
                self._calls.fail(obj.index, f"the tool call was cut off: {cut_by}")
                self._calls.cut_off()
            # else: only the closing brace is missing; the call is complete.
        elif obj is not None and obj.phase == "undecided" and obj.name is not None:
            self._commit(obj, obj.name, error=f"the tool call was cut off: {cut_by}")
            self._calls.args(obj.index, self._raw[obj.start :])
            self._calls.cut_off()
        elif obj is not None and self._region == "calls":
            self._bad_item(obj, len(self._raw), f"was cut off: {cut_by}")
            self._calls.cut_off()
        elif self._region == "pending":
            self._out.text(self._lead + self._raw)
        self._lead = ""
