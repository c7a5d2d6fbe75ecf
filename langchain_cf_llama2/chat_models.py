"""``ChatCloudflareLlama2``: a LangChain chat model with real tool calling on Llama 2.

The class is glue only: messages and tools go through the pure converters of this package into a
core :class:`cf_llama2.ChatRequest`, a :mod:`cf_llama2.backends` backend answers, and the core
result or stream events come back as LangChain messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk
from langchain_core.outputs import ChatResult as LCChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict

from cf_llama2.schema import ChatRequest, ChatResult

from ._messages import messages_to_core
from ._params import CloudflareLlama2Params, sampling_overrides
from ._results import ChunkConverter, result_to_message
from ._tools import convert_tool, convert_tool_choice, convert_tools

__all__ = ["ChatCloudflareLlama2"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]


class ChatCloudflareLlama2(CloudflareLlama2Params, BaseChatModel):
    """Llama 2 chat on Cloudflare Workers AI or a local int8 model, with tool calling.

    Example:
        ```python
        from langchain_cf_llama2 import ChatCloudflareLlama2

        llm = ChatCloudflareLlama2(backend="local", temperature=0)
        llm.invoke("Hello!")

        llm = ChatCloudflareLlama2(account_id="...", api_token="...")  # Workers AI
        llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
        ```

    Args:
        backend: ``"remote"`` (default), ``"local"`` or a backend object.
        account_id: Cloudflare account id (remote); env ``CLOUDFLARE_ACCOUNT_ID``.
        api_token: Workers AI token (remote); env ``CLOUDFLARE_API_TOKEN``/``CF_AI_API_TOKEN``.
        model: Workers AI model id (remote; default ``@cf/meta/llama-2-7b-chat-int8``).
        base_url, gateway, timeout, max_retries: remote transport options.
        max_tokens, temperature, top_p, top_k, seed, repetition_penalty, frequency_penalty,
            presence_penalty, lora, stop: request fields; each can be overridden per call.
        streaming: make ``invoke`` stream under the hood (callbacks see every token).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    streaming: bool = False
    """Stream under the hood on ``invoke`` (for token callbacks)."""

    # ------------------------------------------------------------------ identity

    @property
    def _llm_type(self) -> str:
        return "cloudflare-llama2-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.resolved_model_name(),
            "backend": self.backend_kind(),
            **self.default_sampling(),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        return self._tracing_params(params, stop, kwargs)

    # ------------------------------------------------------------------ request building

    def _request(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatRequest:
        """The core request for a call (pure: no I/O)."""
        options = dict(kwargs)
        tools = options.pop("tools", None) or []
        tool_choice = options.pop("tool_choice", None)
        response_format = options.pop("response_format", None)
        functions = options.pop("functions", None) or []
        stream = bool(options.pop("stream", False))
        fields = sampling_overrides(self.default_sampling(), stop, options)
        # Fields left at their defaults are not passed: their validators have nothing to check.
        if tools:
            fields["tools"] = tools
        if tool_choice:
            fields["tool_choice"] = tool_choice
        if functions:
            fields["functions"] = functions
        if response_format is not None:
            fields["response_format"] = response_format
        if stream:
            fields["stream"] = True
        return ChatRequest(messages=messages_to_core(messages), **fields)

    def _to_chat_result(self, result: ChatResult) -> LCChatResult:
        # A result names its model; the backend is asked only when it does not.
        message = result_to_message(result, model_name=result.model or self._model_name())
        llm_output: dict[str, Any] = {"model_name": message.response_metadata["model_name"]}
        usage = result.usage
        if usage is not None:  # what usage.model_dump() gives, without the serializer
            llm_output["token_usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
        return LCChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)

    # ------------------------------------------------------------------ calls

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Run the inputs concurrently, ``max_batch_size`` at once on a local backend.

        A local backend decodes the calls in flight together, so the default
        ``max_concurrency`` is its ``max_batch_size`` (LangChain's own default is a thread pool
        of ``cpu_count + 4``); a ``max_concurrency`` in ``config`` is kept.
        """
        return super().batch(
            inputs,
            self.batch_config(config, len(inputs)),
            return_exceptions=return_exceptions,
            **kwargs,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LCChatResult:
        request = self._request(messages, stop, kwargs)
        return self._to_chat_result(self.get_backend().run(request))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LCChatResult:
        request = self._request(messages, stop, kwargs)
        return self._to_chat_result(await self.get_backend().arun(request))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # Token callbacks are fired by BaseChatModel for every chunk yielded here.
        request = self._request(messages, stop, {**kwargs, "stream": True})
        backend = self.get_backend()
        converter = ChunkConverter(self._model_name())
        for event in backend.stream(request):
            chunk = converter.convert(event)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        converter.result()  # raises IncompleteStreamError when the end event never came

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, {**kwargs, "stream": True})
        backend = self.get_backend()
        converter = ChunkConverter(self._model_name())
        async for event in backend.astream(request):
            chunk = converter.convert(event)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
        converter.result()

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, in any form LangChain knows, for the model to call.

        Args:
            tools: ``BaseTool``s, ``@tool`` functions, Python functions, pydantic classes,
                TypedDicts, JSON schemas, OpenAI-style function-wrapped dicts or Workers AI flat
                dicts.
            tool_choice: ``"auto"`` (default), ``"any"``/``"required"`` (some tool must be
                called), ``"none"``, a tool name, ``{"type": "function", "function": {"name":
                ...}}``, or ``True`` (the one bound tool).
            **kwargs: further call options, bound as well.

        Raises:
            cf_llama2.errors.RequestValidationError: a tool or ``tool_choice`` that cannot be used.
        """
        core_tools = convert_tools(tools)
        choice = convert_tool_choice(tool_choice, core_tools)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return self.bind(tools=[t.model_dump() for t in core_tools], **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answer with an object matching ``schema``.

        Args:
            schema: a pydantic class, a TypedDict or a JSON schema (``None`` only with
                ``method="json_mode"``).
            method: ``"function_calling"`` (a forced call of a tool built from the schema),
                ``"json_schema"`` (the answer text is JSON constrained by the schema: a grammar
                on the local backend, parsed JSON on the remote one) or ``"json_mode"`` (any JSON
                object; put the keys you want in the prompt).
            include_raw: return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``.
            strict: accepted for compatibility; the local backend always enforces the schema.

        Raises:
            ValueError: an unknown method or keyword, or no schema where one is needed.
        """
        if kwargs:
            raise ValueError(
                f"with_structured_output got unsupported arguments {sorted(kwargs)}; it takes "
                "schema, method, include_raw and strict"
            )
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        llm: Runnable[LanguageModelInput, AIMessage]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            if schema is None:
                raise ValueError("method='function_calling' needs a schema")
            tool = convert_tool(schema)
            llm = self.bind_tools(
                [schema], tool_choice=tool.name, ls_structured_output_format=ls_format
            )
            if is_pydantic:
                parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            else:
                parser = JsonOutputKeyToolsParser(key_name=tool.name, first_tool_only=True)
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                if schema is None:
                    raise ValueError("method='json_schema' needs a schema")
                response_format = {
                    "type": "json_schema",
                    "json_schema": convert_to_json_schema(schema),
                }
            else:
                response_format = {"type": "json_object"}
            bound: dict[str, Any] = {"response_format": response_format}
            if schema is not None:
                bound["ls_structured_output_format"] = ls_format
            llm = self.bind(**bound)
            parser = (
                PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
                if is_pydantic
                else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"method={method!r} is not supported; use 'function_calling', 'json_schema' or "
                "'json_mode'"
            )
        if not include_raw:
            return llm | parser
        parse_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        parse_none = RunnablePassthrough.assign(parsed=lambda _: None)
        with_fallback = parse_assign.with_fallbacks([parse_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | with_fallback
