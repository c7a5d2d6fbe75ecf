"""The backend protocol: how adapters reach a model, whatever it runs on.

A backend takes a validated request (:class:`~cf_llama2.schema.ChatRequest` or
:class:`~cf_llama2.schema.PromptRequest`) and answers with a
:class:`~cf_llama2.schema.ChatResult` (``run``/``arun``) or a stream of
:data:`~cf_llama2.schema.StreamEvent` ending in an :class:`~cf_llama2.schema.EndEvent`
(``stream``/``astream``). Errors are the classes of :mod:`cf_llama2.errors`, the same for
every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..schema import ChatResult, Request, StreamEvent

__all__ = ["Backend", "BackendInfo"]


@dataclass(frozen=True)
class BackendInfo:
    """What a backend can do, for adapters that need to know.

    Attributes:
        model: the model id or path the backend answers with.
        context_window: tokens of prompt plus answer the model accepts.
        constrained_decoding: ``True`` when tool calls and ``response_format`` are enforced by a
            grammar (local); ``False`` when they are requested and then parsed (remote).
        provider: a short name for logs and tracing (``"workers-ai"``, ``"local"``).
    """

    model: str
    context_window: int = 4096
    constrained_decoding: bool = False
    provider: str = "workers-ai"


@runtime_checkable
class Backend(Protocol):
    """What every backend implements; sync and async share everything but the I/O."""

    @property
    def info(self) -> BackendInfo:
        """Static facts about the model behind this backend."""
        ...

    def run(self, request: Request) -> ChatResult:
        """Answer ``request`` in one piece."""
        ...

    def stream(self, request: Request) -> Iterator[StreamEvent]:
        """Answer ``request`` as events; the last one is an ``EndEvent``."""
        ...

    async def arun(self, request: Request) -> ChatResult:
        """Async :meth:`run`."""
        ...

    def astream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`."""
        ...

    def close(self) -> None:
        """Release connections, threads or model memory."""
        ...

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        ...
