"""``CloudflareLlama2``: a LangChain text-completion LLM over the Workers AI prompt shape.

A drop-in for langchain-community's ``CloudflareWorkersAI`` (same default model, same
``account_id``/``api_token``/``model`` arguments) that also runs on the local backend, streams
sync and async, reports token usage and honours ``stop`` and ``raw``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict

from cf_llama2.backends.base import Backend
from cf_llama2.schema import ChatResult, PromptRequest, TextDelta, Usage
from cf_llama2.schema.reducer import StreamReducer

from ._params import CloudflareLlama2Params, sampling_overrides

__all__ = ["CloudflareLlama2"]


def _generation(result: ChatResult) -> Generation:
    info: dict[str, Any] = {"finish_reason": result.finish_reason}
    if result.usage is not None:
        info["usage"] = result.usage.model_dump()
    return Generation(text=result.response, generation_info=info)


def _llm_output(results: list[ChatResult], model_name: str) -> dict[str, Any]:
    total = Usage()
    for r in results:
        if r.usage is not None:
            total = Usage(
                prompt_tokens=total.prompt_tokens + r.usage.prompt_tokens,
                completion_tokens=total.completion_tokens + r.usage.completion_tokens,
                total_tokens=total.total_tokens + r.usage.total_tokens,
            )
    return {"model_name": model_name, "token_usage": total.model_dump()}


def _run_all(backend: Backend, requests: list[PromptRequest], width: int) -> list[ChatResult]:
    """Answers in the order of ``requests``, ``width`` at a time (the first error is raised)."""
    if width <= 1:
        return [backend.run(r) for r in requests]
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="cf-llama2-batch") as pool:
        futures = [pool.submit(backend.run, r) for r in requests]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()  # those not started; the running ones finish their step and stop
            raise


async def _arun_all(
    backend: Backend, requests: list[PromptRequest], width: int
) -> list[ChatResult]:
    """Async :func:`_run_all`: the others are cancelled when one fails."""
    if width <= 1:
        return [await backend.arun(r) for r in requests]
    gate = asyncio.Semaphore(width)

    async def one(request: PromptRequest) -> ChatResult:
        async with gate:
            return await backend.arun(request)

    tasks = [asyncio.ensure_future(one(r)) for r in requests]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class CloudflareLlama2(CloudflareLlama2Params, BaseLLM):
    """Llama 2 text completion on Workers AI or a local int8 model.

    Example:
        ```python
        from langchain_cf_llama2 import CloudflareLlama2

        llm = CloudflareLlama2(backend="local", temperature=0, max_tokens=32)
        llm.invoke("Name three colours.")
        CloudflareLlama2(raw=True).invoke("[INST] Hi [/INST]")  # no chat template
        ```

    Args:
        raw: send the prompt as is, without the chat template.
        streaming: make ``invoke`` stream under the hood (callbacks see every token).
        Other arguments: as :class:`~langchain_cf_llama2.ChatCloudflareLlama2`.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    raw: bool = False
    """Skip the chat template and send the prompt as is."""

    streaming: bool = False
    """Stream under the hood on ``invoke``."""

    @property
    def _llm_type(self) -> str:
        return "cloudflare-llama2"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.resolved_model_name(),
            "backend": self.backend_kind(),
            "raw": self.raw,
            **self.default_sampling(),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        return self._tracing_params(params, stop, kwargs)

    def _request(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any], *, stream: bool
    ) -> PromptRequest:
        options = dict(kwargs)
        raw = options.pop("raw", None)
        sampling = sampling_overrides(self.default_sampling(), stop, options)
        return PromptRequest(
            prompt=prompt, raw=self.raw if raw is None else bool(raw), stream=stream, **sampling
        )

    def _llm_result(self, results: list[ChatResult]) -> LLMResult:
        return LLMResult(
            generations=[[_generation(r)] for r in results],
            llm_output=_llm_output(results, self._model_name()),
        )

    def _width(self, size: int) -> int:
        """Prompts of one ``generate`` run at once: the backend's batch size, else one by one."""
        return min(size, self.batch_width() or 1) if size > 1 else 1

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        if not self.streaming:
            requests = [self._request(p, stop, kwargs, stream=False) for p in prompts]
            results = _run_all(self.get_backend(), requests, self._width(len(prompts)))
            return self._llm_result(results)
        streamed: list[ChatResult] = []  # one by one, so token callbacks stay in order
        for prompt in prompts:
            reducer = StreamReducer(model=self._model_name())
            request = self._request(prompt, stop, kwargs, stream=True)
            for event in self.get_backend().stream(request):
                reducer.feed(event)
                if isinstance(event, TextDelta) and event.text and run_manager:
                    run_manager.on_llm_new_token(event.text)
            streamed.append(reducer.result())
        return self._llm_result(streamed)

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        if not self.streaming:
            requests = [self._request(p, stop, kwargs, stream=False) for p in prompts]
            results = await _arun_all(self.get_backend(), requests, self._width(len(prompts)))
            return self._llm_result(results)
        streamed: list[ChatResult] = []  # one by one, so token callbacks stay in order
        for prompt in prompts:
            reducer = StreamReducer(model=self._model_name())
            request = self._request(prompt, stop, kwargs, stream=True)
            async for event in self.get_backend().astream(request):
                reducer.feed(event)
                if isinstance(event, TextDelta) and event.text and run_manager:
                    await run_manager.on_llm_new_token(event.text)
            streamed.append(reducer.result())
        return self._llm_result(streamed)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        request = self._request(prompt, stop, kwargs, stream=True)
        reducer = StreamReducer(model=self._model_name())
        for event in self.get_backend().stream(request):
            reducer.feed(event)
            if isinstance(event, TextDelta) and event.text:
                chunk = GenerationChunk(text=event.text)
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        yield _final_chunk(reducer.result())

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        request = self._request(prompt, stop, kwargs, stream=True)
        reducer = StreamReducer(model=self._model_name())
        async for event in self.get_backend().astream(request):
            reducer.feed(event)
            if isinstance(event, TextDelta) and event.text:
                chunk = GenerationChunk(text=event.text)
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        yield _final_chunk(reducer.result())


def _final_chunk(result: ChatResult) -> GenerationChunk:
    """An empty chunk carrying the finish reason and usage (raises on a cut stream)."""
    info: dict[str, Any] = {"finish_reason": result.finish_reason, "model_name": result.model}
    if result.usage is not None:
        info["usage"] = result.usage.model_dump()
    return GenerationChunk(text="", generation_info=info)
