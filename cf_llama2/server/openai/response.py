"""Core results and stream events -> OpenAI ``chat.completion`` objects and chunks."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ...schema import (
    ChatResult,
    EndEvent,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from .errors import error_body

__all__ = ["ChunkEncoder", "completion_id", "result_to_completion", "usage_dict"]


def completion_id() -> str:
    """A fresh ``chatcmpl-...`` id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_dict(usage: Usage | None) -> dict[str, int]:
    """OpenAI's ``usage`` object (zeros when the backend reported none)."""
    usage = usage or Usage()
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _wire_call(call_id: str, name: str | None, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name or "", "arguments": arguments},
    }


def result_to_completion(result: ChatResult, *, model: str) -> dict[str, Any]:
    """The ``chat.completion`` object for a complete answer.

    Tool calls carry their arguments as a JSON string (OpenAI's form); calls the backend judged
    unusable are returned too, with the raw arguments text, so nothing is hidden from the client.
    """
    calls = [
        _wire_call(c.id, c.name, json.dumps(c.arguments, ensure_ascii=False))
        for c in result.tool_calls
    ]
    calls += [_wire_call(c.id, c.name, c.arguments) for c in result.invalid_tool_calls]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.response if result.response or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": usage_dict(result.usage),
    }


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class ChunkEncoder:
    """Frames core stream events as ``chat.completion.chunk`` SSE events.

    The first chunk carries ``role: assistant``; text becomes ``delta.content``; tool-call deltas
    become ``delta.tool_calls`` items (``id``, ``type`` and ``name`` on the first piece of an
    index, argument text after); the end event sends ``finish_reason``; with ``include_usage``
    every chunk has ``usage: null`` and a last chunk with no choices carries the usage; then
    ``data: [DONE]``.

    Args:
        model: the model name to report.
        include_usage: ``stream_options.include_usage`` of the request.
    """

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self._id = completion_id()
        self._created = int(time.time())
        self._model = model
        self._include_usage = include_usage
        self._started = False
        self._usage: Usage | None = None
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        if not self._started:
            self._started = True
            return {"role": "assistant", **delta}
        return delta

    def encode(self, event: StreamEvent) -> bytes:
        """The bytes for one event (empty when it has nothing to say)."""
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            return _frame(self._chunk(self._delta({"content": event.text})))
        if isinstance(event, ToolCallDelta):
            item: dict[str, Any] = {"index": event.index}
            if event.id is not None or event.name is not None:
                item["id"] = event.id or f"call_{event.index}"
                item["type"] = "function"
                item["function"] = {"name": event.name or "", "arguments": event.arguments}
            else:
                item["function"] = {"arguments": event.arguments}
            return _frame(self._chunk(self._delta({"tool_calls": [item]})))
        if isinstance(event, UsageEvent):
            self._usage = event.usage
            return b""
        if isinstance(event, EndEvent):
            out = _frame(self._chunk(self._delta({}), event.finish_reason))
            if self._include_usage:
                out += _frame(
                    {
                        "id": self._id,
                        "object": "chat.completion.chunk",
                        "created": self._created,
                        "model": self._model,
                        "choices": [],
                        "usage": usage_dict(self._usage),
                    }
                )
            self.done = True
            return out + b"data: [DONE]\n\n"
        return b""

    def encode_error(self, error: BaseException) -> bytes:
        """An OpenAI error object as one last event (the status was already sent)."""
        self.done = True
        _status, body = error_body(error)
        return _frame(body)
