"""Streaming glue for ``CloudflareLlama2``: backend events to LlamaIndex chunks, sync and async.

Each generator converts one backend stream with the converters of :mod:`._responses`; the
sync and async variants differ only in how they iterate the backend.
"""

from __future__ import annotations

from llama_index.core.base.llms.types import (
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
)

from cf_llama2.backends.base import Backend
from cf_llama2.schema import ChatRequest, PromptRequest

from ._responses import ChatStreamConverter, CompletionStreamConverter

__all__ = [
    "achat_chunks",
    "acompletion_chunks",
    "chat_chunks",
    "completion_chunks",
]


def chat_chunks(backend: Backend, request: ChatRequest) -> ChatResponseGen:
    """Chat chunks of ``backend.stream(request)``; the last is the complete answer."""
    converter = ChatStreamConverter(model=backend.info.model)
    for event in backend.stream(request):
        chunk = converter.feed(event)
        if chunk is not None:
            yield chunk
    converter.finish()


async def achat_chunks(backend: Backend, request: ChatRequest) -> ChatResponseAsyncGen:
    """Async :func:`chat_chunks`."""
    converter = ChatStreamConverter(model=backend.info.model)
    async for event in backend.astream(request):
        chunk = converter.feed(event)
        if chunk is not None:
            yield chunk
    converter.finish()


def completion_chunks(backend: Backend, request: PromptRequest) -> CompletionResponseGen:
    """Completion chunks of ``backend.stream(request)``; the last carries the usage."""
    converter = CompletionStreamConverter(model=backend.info.model)
    for event in backend.stream(request):
        chunk = converter.feed(event)
        if chunk is not None:
            yield chunk
    converter.finish()


async def acompletion_chunks(
    backend: Backend, request: PromptRequest
) -> CompletionResponseAsyncGen:
    """Async :func:`completion_chunks`."""
    converter = CompletionStreamConverter(model=backend.info.model)
    async for event in backend.astream(request):
        chunk = converter.feed(event)
        if chunk is not None:
            yield chunk
    converter.finish()
