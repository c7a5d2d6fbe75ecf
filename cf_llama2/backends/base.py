"""The backend protocol: how adapters reach a model, whatever it runs on.

A backend takes a validated request (:class:`~cf_llama2.schema.ChatRequest` or
:class:`~cf_llama2.schema.PromptRequest`) and answers with a
:class:`~cf_llama2.schema.ChatResult` (``run``/``arun``) or a stream of
:data:`~cf_llama2.schema.StreamEvent` ending in an :class:`~cf_llama2.schema.EndEvent`
(``stream``/``astream``). Errors are the classes of :mod:`cf_llama2.errors`, the same for
every backend.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..schema import ChatResult, Request, StreamEvent

__all__ = ["Backend", "BackendInfo", "backend_provider", "is_backend"]


@dataclass(frozen=True)
class BackendInfo:
    """What a backend can do, for adapters that need to know.

    Attributes:
        model: the model id or path the backend answers with.
        context_window: tokens of prompt plus answer the model accepts.
        provider: a short name for logs and tracing (``"workers-ai"``, ``"local"``).
    """

    model: str
    context_window: int = 4096
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


_MEMBERS = ("info", "run", "stream", "arun", "astream", "close", "aclose")


def is_backend(obj: object) -> bool:
    """Whether ``obj`` has every member of :class:`Backend`, checked without running any of them.

    ``isinstance(obj, Backend)`` evaluates the ``info`` property on Python 3.10 and 3.11 (which
    may read a model's config from disk); this looks the members up statically instead.
    """
    missing = object()
    return all(inspect.getattr_static(obj, name, missing) is not missing for name in _MEMBERS)


def backend_provider(obj: Any) -> str:
    """The provider name of a backend (``"workers-ai"``, ``"local"``, ...) without I/O when the
    class declares it as a ``provider`` class attribute (the built-in backends do)."""
    declared = inspect.getattr_static(type(obj), "provider", None)
    if isinstance(declared, str):
        return declared
    info = getattr(obj, "info", None)
    return str(getattr(info, "provider", "custom"))
