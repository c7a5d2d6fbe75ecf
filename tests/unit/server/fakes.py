"""Fake backends for the server tests: they echo, block on a gate, and observe cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from cf_llama2.backends.base import BackendInfo
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    Request,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
)
from cf_llama2.schema.reducer import areduce_events, reduce_events


def _prompt_text(request: Request) -> str:
    if isinstance(request, ChatRequest):
        return request.messages[-1].content
    return request.prompt


class EchoBackend:
    """Answers with the last user text, word by word, so concurrent clients can check theirs."""

    def __init__(self, model: str = "echo") -> None:
        self._info = BackendInfo(model=model, provider="echo")
        self.closed = False

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _events(self, request: Request) -> list[StreamEvent]:
        words = _prompt_text(request).split(" ")
        events: list[StreamEvent] = [
            TextDelta(text=w if i == 0 else " " + w) for i, w in enumerate(words)
        ]
        n = len(words)
        events.append(
            UsageEvent(usage=Usage(prompt_tokens=n, completion_tokens=n, total_tokens=2 * n))
        )
        events.append(EndEvent(finish_reason="stop", model=self._info.model))
        return events

    def run(self, request: Request) -> ChatResult:
        return reduce_events(self._events(request))

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        yield from self._events(request)

    async def arun(self, request: Request) -> ChatResult:
        return await areduce_events(self.astream(request))

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for event in self._events(request):
            await asyncio.sleep(0)
            yield event

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


class GatedBackend:
    """Streams ``tokens`` pieces; each piece after the first waits until ``gate`` is set.

    ``started`` is set when a generation begins, ``cancelled`` when one is stopped before its
    end (the client went away or the server shut down), ``finished`` when one completes.
    """

    def __init__(self, tokens: int = 1000) -> None:
        self.tokens = tokens
        self.gate = threading.Event()
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.produced = 0
        self._info = BackendInfo(model="gated", provider="gated")

    @property
    def info(self) -> BackendInfo:
        return self._info

    def run(self, request: Request) -> ChatResult:
        raise NotImplementedError("the server uses the async methods")

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        raise NotImplementedError("the server uses the async methods")

    async def arun(self, request: Request) -> ChatResult:
        return await areduce_events(self.astream(request))

    async def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        self.started.set()
        complete = False
        try:
            for i in range(self.tokens):
                # The gate is a threading.Event (set from the test's thread), so poll it: a
                # cancellable wait that leaves no thread behind.
                while i > 0 and not self.gate.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                self.produced += 1
                yield TextDelta(text=f"t{i} ")
            yield UsageEvent(
                usage=Usage(
                    prompt_tokens=1, completion_tokens=self.tokens, total_tokens=self.tokens + 1
                )
            )
            yield EndEvent(finish_reason="length", model="gated")
            complete = True
            self.finished.set()
        finally:
            if not complete:
                self.cancelled.set()

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
