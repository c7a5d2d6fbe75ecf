"""Server side of streams: events -> ``data: {...}`` payloads -> SSE bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..schema import EndEvent, StreamEvent, TextDelta, ToolCallDelta, Usage, UsageEvent
from .envelope import _call_to_wire, _usage_dict, error_to_envelope

__all__ = ["DONE_LINE", "PendingPayload", "SSEEncoder", "event_to_sse_payload"]

DONE_LINE = b"data: [DONE]\n\n"


@dataclass
class _PendingCall:
    name: str | None = None
    arguments: str = ""


@dataclass
class PendingPayload:
    """What :func:`event_to_sse_payload` holds back: incomplete tool calls and the usage."""

    calls: dict[int, _PendingCall] = field(default_factory=dict)
    usage: Usage | None = None

    def flush_calls(self) -> list[dict[str, Any]]:
        """The held calls as wire calls (``arguments`` an object, or the raw text if invalid)."""
        out: list[dict[str, Any]] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            text = call.arguments.strip()
            args: Any
            try:
                args = json.loads(text) if text else {}
            except json.JSONDecodeError:
                args = call.arguments
            out.append(_call_to_wire(call.name, args))
        self.calls.clear()
        return out


def event_to_sse_payload(event: StreamEvent, pending: PendingPayload) -> dict[str, Any] | None:
    """The wire payload for one stream event, or ``None`` while it is held back.

    Tool-call deltas are held until the call is complete (a new call index, text, usage or the
    end) and then sent as one ``tool_calls`` payload; a payload that carries both held calls and
    text lists the calls first. Usage is held until the end event and sent with
    ``finish_reason``. The caller writes ``data: [DONE]`` after the end payload.
    """
    if isinstance(event, TextDelta):
        if not event.text:
            return None
        payload: dict[str, Any] = {"response": event.text}
        if pending.calls:
            payload["tool_calls"] = pending.flush_calls()
        return payload
    if isinstance(event, ToolCallDelta):
        out = None
        if event.index not in pending.calls and pending.calls:
            out = {"response": "", "tool_calls": pending.flush_calls()}
        call = pending.calls.setdefault(event.index, _PendingCall())
        if event.name:
            call.name = (call.name or "") + event.name
        call.arguments += event.arguments
        return out
    if isinstance(event, UsageEvent):
        pending.usage = event.usage
        return {"response": "", "tool_calls": pending.flush_calls()} if pending.calls else None
    payload = {"response": ""}
    if pending.calls:
        payload["tool_calls"] = pending.flush_calls()
    if pending.usage is not None:
        payload["usage"] = _usage_dict(pending.usage)
    payload["finish_reason"] = event.finish_reason
    return payload


def _frame(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class SSEEncoder:
    """Frame a stream of events as Workers AI SSE bytes (``data: {...}\\n\\n`` ... ``[DONE]``)."""

    def __init__(self) -> None:
        self._pending = PendingPayload()
        self.done = False

    def encode(self, event: StreamEvent) -> bytes:
        """The bytes for one event (empty while held back; the end event adds ``[DONE]``)."""
        payload = event_to_sse_payload(event, self._pending)
        data = _frame(payload) if payload is not None else b""
        if isinstance(event, EndEvent):
            self.done = True
            data += DONE_LINE
        return data

    def encode_error(self, error: BaseException) -> bytes:
        """A failure envelope as one ``data:`` payload, for errors after the stream started."""
        status, envelope = error_to_envelope(error)
        self.done = True
        # The HTTP status was already sent (200): it travels in the payload (our extension).
        return _frame({**envelope, "status": status})

    def iter_encode(self, events: Iterable[StreamEvent]) -> Iterator[bytes]:
        """Encode a whole event sequence, skipping empty chunks."""
        for event in events:
            chunk = self.encode(event)
            if chunk:
                yield chunk
