"""Test doubles for users' own tests: a scripted backend that needs no network and no model.

Example:
    >>> from cf_llama2.testing import ScriptedBackend, tool_call
    >>> backend = ScriptedBackend(["Hello!", tool_call("get_weather", city="Paris")])
    >>> backend.run(ChatRequest(messages=[{"role": "user", "content": "hi"}])).response
    'Hello!'

Each call pops the next scripted answer: a string (text), a :class:`ChatResult`, a list of
stream events (streamed exactly as given; omit the ``EndEvent`` to simulate a cut stream), or an
exception instance (raised). ``requests`` records every request received.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from .backends.base import BackendInfo
from .errors import ConfigurationError
from .schema import (
    ChatResult,
    EndEvent,
    Request,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from .schema.reducer import reduce_events

__all__ = ["Script", "ScriptedBackend", "result_to_events", "tool_call"]

Script = str | ChatResult | Sequence[StreamEvent] | BaseException

_counter = 0
_counter_lock = threading.Lock()


def tool_call(name: str, call_id: str | None = None, /, **arguments: Any) -> ChatResult:
    """A scripted answer that calls ``name`` with ``arguments``.

    Args:
        name: the tool name.
        call_id: the call id (default: a fresh ``call_scripted_N``).
        **arguments: the call's arguments.

    Returns:
        A ``ChatResult`` with that one tool call and ``finish_reason="tool_calls"``.
    """
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return ChatResult(
        tool_calls=[ToolCall(id=call_id or f"call_scripted_{n}", name=name, arguments=arguments)],
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=10, completion_tokens=8, total_tokens=18),
    )


def result_to_events(result: ChatResult, *, chunk_words: bool = True) -> list[StreamEvent]:
    """The events a backend would stream for ``result`` (text split into word pieces)."""
    events: list[StreamEvent] = []
    if result.response:
        pieces = re.findall(r"\S+\s*|\s+", result.response) if chunk_words else [result.response]
        events.extend(TextDelta(text=p) for p in pieces)
    for index, call in enumerate(result.tool_calls):
        args = json.dumps(call.arguments)
        half = len(args) // 2
        events.append(ToolCallDelta(index=index, id=call.id, name=call.name, arguments=args[:half]))
        events.append(ToolCallDelta(index=index, arguments=args[half:]))
    for index, bad in enumerate(result.invalid_tool_calls, start=len(result.tool_calls)):
        events.append(
            ToolCallDelta(
                index=index, id=bad.id, name=bad.name, arguments=bad.arguments, error=bad.error
            )
        )
    if result.usage is not None:
        events.append(UsageEvent(usage=result.usage))
    events.append(EndEvent(finish_reason=result.finish_reason, model=result.model))
    return events


class ScriptedBackend:
    """A backend that answers from a script, for tests without a network or a model.

    Each call takes the next scripted answer: a string (text), a ``ChatResult`` (see
    :func:`tool_call`), a list of stream events (streamed as given; leave out the ``EndEvent``
    to simulate a cut stream) or an exception instance (raised). ``requests`` records every
    request received.

    Example:
        >>> from langchain_cf_llama2 import ChatCloudflareLlama2
        >>> backend = ScriptedBackend(["Hello!", tool_call("get_weather", city="Paris")])
        >>> ChatCloudflareLlama2(backend=backend).invoke("hi").content
        'Hello!'

    Args:
        script: answers, used in order.
        model: the model name reported in results.
        repeat_last: keep answering with the last entry once the script is used up.
    """

    provider = "scripted"
    """The provider name (also ``info.provider``), known without loading anything."""

    def __init__(
        self, script: Iterable[Script] = (), *, model: str = "scripted", repeat_last: bool = False
    ) -> None:
        self._script: list[Script] = list(script)
        self._lock = threading.Lock()
        self.repeat_last = repeat_last
        self.requests: list[Request] = []
        self._info = BackendInfo(model=model, provider="scripted")
        self.closed = False

    @property
    def info(self) -> BackendInfo:
        return self._info

    def add(self, *answers: Script) -> None:
        """Append answers to the script."""
        with self._lock:
            self._script.extend(answers)

    def _next(self, request: Request) -> list[StreamEvent]:
        with self._lock:
            self.requests.append(request)
            if not self._script:
                raise ConfigurationError(
                    "ScriptedBackend has no scripted answer left; add one with .add(...)"
                )
            item = self._script[0] if self.repeat_last and len(self._script) == 1 else None
            if item is None:
                item = self._script.pop(0)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            n_out = max(1, len(item.split()))
            item = ChatResult(
                response=item,
                usage=Usage(prompt_tokens=10, completion_tokens=n_out, total_tokens=10 + n_out),
            )
        if isinstance(item, ChatResult):
            model = item.model or self._info.model
            return result_to_events(item.model_copy(update={"model": model}))
        return list(item)

    def run(self, request: Request) -> ChatResult:
        return reduce_events(self._next(request), model=self._info.model)

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        yield from self._next(request)

    async def arun(self, request: Request) -> ChatResult:
        return self.run(request)

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for event in self._next(request):
            await asyncio.sleep(0)
            yield event

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True
