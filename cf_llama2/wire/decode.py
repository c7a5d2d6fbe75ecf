"""Client side of answers: result objects and stream payloads -> stream events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import tool_calls
from ..errors import BadResponseError, error_from_response
from ..schema import (
    EndEvent,
    FinishReason,
    Request,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
    stop,
)
from ..tools import Tool
from .envelope import _is_failure, envelope_result
from .request import sent_tools

__all__ = ["WireStreamDecoder", "envelope_to_events"]

_USAGE_FIELDS = frozenset(Usage.model_fields)
"""Read once: pydantic's ``model_fields`` is a class property that costs microseconds a read."""


class WireStreamDecoder:
    """Turn Workers AI result objects / stream payloads into stream events.

    One decoder serves one answer. :meth:`feed` takes each decoded ``data:`` payload (or the
    whole ``result`` object of a non-streamed answer); :meth:`finish` ends the answer and
    returns the closing events (held text, ``UsageEvent``, ``EndEvent``). Text goes through the
    request's stop sequences and, when tools were sent, through the incremental tool-call
    parser; structured ``tool_calls`` get generated ids.

    Args:
        request: the request being answered (tools, stop sequences, ``max_tokens``).
        model: the model name reported in the end event.
        tools: ``sent_tools(request)`` when the caller has worked it out already; ``None`` to
            work it out here.
    """

    def __init__(
        self, request: Request, *, model: str = "", tools: Sequence[Tool] | None = None
    ) -> None:
        self.model = model
        self._max_tokens = request.max_tokens
        self._tools = sent_tools(request) if tools is None else list(tools)
        self._stop = stop.StopFilter(request.stop) if request.stop else None
        self._parser = tool_calls.ToolCallStreamParser(self._tools) if self._tools else None
        self._index: dict[tuple[str, int], int] = {}
        self._usage: Usage | None = None
        self._finish: FinishReason | None = None
        self._valid_structured = False
        self._text_calls = False
        self._finished = False
        self.text_parts: list[str] = []

    @property
    def stopped(self) -> bool:
        """A stop sequence was seen: the rest of the answer is to be dropped."""
        return self._stop is not None and self._stop.stopped

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return "".join(self.text_parts)

    def _global_index(self, source: str, index: int) -> int:
        key = (source, index)
        if key not in self._index:
            self._index[key] = len(self._index)
        return self._index[key]

    def _parsed(self, items: Sequence[TextDelta | ToolCallDelta]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for item in items:
            if isinstance(item, ToolCallDelta):
                self._text_calls = True
                out.append(
                    item.model_copy(update={"index": self._global_index("text", item.index)})
                )
            elif item.text:
                self.text_parts.append(item.text)
                out.append(item)
        return out

    def _text(self, text: str) -> list[StreamEvent]:
        if self._stop is not None:
            if self._stop.stopped:
                return []
            text = self._stop.feed(text)
        if not text:
            return []
        if self._parser is not None:
            return self._parsed(self._parser.feed(text))
        self.text_parts.append(text)
        return [TextDelta(text=text)]

    def _structured(self, raw: Any) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._parser is not None:
            out += self._parsed(self._parser.release_whitespace())
        for call in tool_calls.calls_from_wire(raw, self._tools):
            index = len(self._index)
            self._index[("wire", index)] = index
            if isinstance(call, ToolCall):
                self._valid_structured = True
                args = json.dumps(call.arguments, separators=(",", ":"), ensure_ascii=False)
                out.append(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=args))
            else:
                out.append(
                    ToolCallDelta(
                        index=index,
                        id=call.id,
                        name=call.name,
                        arguments=call.arguments,
                        error=call.error,
                    )
                )
        return out

    def feed(self, payload: Any) -> list[StreamEvent]:
        """Events for one payload (``{"response", "tool_calls", "usage", "finish_reason"}``).

        Raises:
            APIError: the payload is a failure envelope.
            BadResponseError: the payload is not an object.
        """
        if isinstance(payload, str):
            payload = {"response": payload}
        if not isinstance(payload, Mapping):
            raise BadResponseError(
                f"a Workers AI stream event must be a JSON object; got {type(payload).__name__}",
                body=payload,
            )
        if _is_failure(payload) or (payload.get("errors") and "response" not in payload):
            status = payload.get("status")
            raise error_from_response(status if isinstance(status, int) else None, payload)
        events: list[StreamEvent] = []
        if self.stopped:
            pass
        elif payload.get("tool_calls"):
            events += self._structured(payload["tool_calls"])
        response = payload.get("response")
        if isinstance(response, str) and response:
            events += self._text(response)
        elif response is not None and not isinstance(response, str):
            raise BadResponseError(
                f"Workers AI 'response' must be a string; got {type(response).__name__}",
                body=dict(payload),
            )
        usage = payload.get("usage")
        if isinstance(usage, Mapping):
            counts = {k: v for k, v in usage.items() if k in _USAGE_FIELDS and type(v) is int}
            counts.setdefault(
                "total_tokens", counts.get("prompt_tokens", 0) + counts.get("completion_tokens", 0)
            )
            self._usage = Usage.model_validate(counts)
        reason = payload.get("finish_reason")
        if reason in ("stop", "length", "tool_calls"):
            self._finish = reason
        return events

    def finish(self) -> list[StreamEvent]:
        """The closing events: held-back text, the usage event and the end event."""
        if self._finished:
            return []
        self._finished = True
        events: list[StreamEvent] = []
        if self._stop is not None and not self._stop.stopped:
            rest = self._stop.flush()
            if rest:
                if self._parser is not None:
                    events += self._parsed(self._parser.feed(rest))
                else:
                    self.text_parts.append(rest)
                    events.append(TextDelta(text=rest))
        reason: FinishReason
        if self.stopped:
            reason = "stop"
        elif self._finish is not None:
            reason = self._finish
        elif self._usage is not None and self._usage.completion_tokens >= self._max_tokens:
            reason = "length"
        else:
            reason = "stop"
        if self._parser is not None:
            items, reason = self._parser.finish(reason)
            events += self._parsed(items)
        if self._valid_structured and not (reason == "length" and self._text_calls):
            reason = "tool_calls"
        elif reason == "tool_calls" and self._parser is None:
            reason = "stop"  # the wire said so, but no valid call arrived
        if self._usage is not None:
            events.append(UsageEvent(usage=self._usage))
        events.append(EndEvent(finish_reason=reason, model=self.model))
        return events


def envelope_to_events(
    status: int,
    body: Any,
    request: Request,
    *,
    model: str = "",
    tools: Sequence[Tool] | None = None,
) -> list[StreamEvent]:
    """All events of a non-streamed answer (fold them with ``reduce_events``).

    ``tools``: as for :class:`WireStreamDecoder`.

    Raises:
        APIError: the envelope is a failure or has the wrong shape.
    """
    result = envelope_result(status, body)
    decoder = WireStreamDecoder(request, model=model, tools=tools)
    return [*decoder.feed(result), *decoder.finish()]
