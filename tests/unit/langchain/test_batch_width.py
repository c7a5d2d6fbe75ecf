"""Batches reach a batching backend ``max_batch_size`` wide, in order, and errors still surface.

A local backend decodes the calls in flight together in each model step, so a LangChain batch
gains only when that many calls are in flight at once: LangChain's default thread pool is
``cpu_count + 4`` wide (6 on a 2-core machine) and ``BaseLLM.generate`` runs prompts one by one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from cf_llama2.errors import ServerError
from cf_llama2.schema import ChatResult, Request
from cf_llama2.testing import ScriptedBackend
from langchain_cf_llama2 import ChatCloudflareLlama2, CloudflareLlama2


class BatchingBackend(ScriptedBackend):
    """A scripted backend that says it batches, and records how many calls overlap."""

    def __init__(self, max_batch_size: int, *, fail_on: str | None = None) -> None:
        super().__init__([], model="batching")
        self.max_batch_size = max_batch_size
        self.fail_on = fail_on
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()

    def _answer(self, request: Request) -> ChatResult:
        text = request.prompt if hasattr(request, "prompt") else request.messages[-1].content
        if text == self.fail_on:
            raise ServerError("the model failed", status_code=500)
        return ChatResult(response=f"echo {text}")

    def run(self, request: Request) -> ChatResult:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            time.sleep(0.05)  # long enough for every admitted call to be in flight together
            return self._answer(request)
        finally:
            with self._lock:
                self._now -= 1

    async def arun(self, request: Request) -> ChatResult:
        with self._lock:
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            await asyncio.sleep(0.05)
            return self._answer(request)
        finally:
            with self._lock:
                self._now -= 1


PROMPTS = [f"q{i}" for i in range(10)]


def test_chat_batch_runs_max_batch_size_calls_at_once() -> None:
    backend = BatchingBackend(8)
    out = ChatCloudflareLlama2(backend=backend).batch(PROMPTS)
    assert [m.content for m in out] == [f"echo {p}" for p in PROMPTS]
    assert backend.peak == 8


def test_a_callers_max_concurrency_is_kept() -> None:
    backend = BatchingBackend(8)
    ChatCloudflareLlama2(backend=backend).batch(PROMPTS, config={"max_concurrency": 2})
    assert backend.peak == 2


def test_a_bound_model_batches_as_wide() -> None:
    backend = BatchingBackend(8)
    bound = ChatCloudflareLlama2(backend=backend).bind(temperature=0)
    bound.batch(PROMPTS, config=[{"tags": ["a"]}] * len(PROMPTS))
    assert backend.peak == 8


def test_a_backend_without_a_batch_size_keeps_langchains_default() -> None:
    model = ChatCloudflareLlama2(backend=ScriptedBackend(["a", "b"]))
    assert model.batch_width() is None
    assert model.batch_config(None, 2) is None
    assert [m.content for m in model.batch(["x", "y"])] == ["a", "b"]


def test_text_llm_generate_runs_prompts_together_in_order() -> None:
    backend = BatchingBackend(4)
    llm = CloudflareLlama2(backend=backend)
    assert llm.batch(PROMPTS) == [f"echo {p}" for p in PROMPTS]
    assert backend.peak == 4
    result = llm.generate(PROMPTS[:3])
    assert [g[0].text for g in result.generations] == ["echo q0", "echo q1", "echo q2"]


def test_text_llm_agenerate_runs_prompts_together_in_order() -> None:
    backend = BatchingBackend(4)
    llm = CloudflareLlama2(backend=backend)
    out = asyncio.run(llm.abatch(PROMPTS))
    assert out == [f"echo {p}" for p in PROMPTS]
    assert backend.peak == 4


def test_a_failing_prompt_raises_its_error_sync_and_async() -> None:
    llm = CloudflareLlama2(backend=BatchingBackend(4, fail_on="q3"))
    with pytest.raises(ServerError, match="the model failed"):
        llm.generate(PROMPTS)
    with pytest.raises(ServerError, match="the model failed"):
        asyncio.run(llm.agenerate(PROMPTS))
    # BaseLLM.batch runs one generate for the whole batch: with return_exceptions every item
    # carries the error (LangChain's rule for text LLMs); the chat model keeps the others
    outcome: list[Any] = llm.batch(PROMPTS, return_exceptions=True)
    assert all(isinstance(o, ServerError) for o in outcome)
    chat = ChatCloudflareLlama2(backend=BatchingBackend(4, fail_on="q3"))
    answers: list[Any] = chat.batch(PROMPTS, return_exceptions=True)
    assert isinstance(answers[3], ServerError)
    assert [a.content for i, a in enumerate(answers) if i != 3] == [
        f"echo {p}" for i, p in enumerate(PROMPTS) if i != 3
    ]
