"""``CloudflareLlama2``: a LlamaIndex ``FunctionCallingLLM`` for Llama 2 chat with tool calling.

The class is glue: LlamaIndex messages and tools go through the pure converters of
:mod:`._messages` and :mod:`._tools` into a core request, a backend answers (Workers AI, the
local int8 model or any backend object), and :mod:`._responses` turns the result or the event
stream back into LlamaIndex responses. Sync and async paths share everything but the backend call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from pydantic import BaseModel

from cf_llama2.backends.base import Backend
from cf_llama2.backends.factory import resolve_backend
from cf_llama2.errors import ConfigurationError, RequestValidationError
from cf_llama2.schema import (
    SAMPLING_FIELDS,
    ChatRequest,
    PromptRequest,
    ResponseFormat,
    SamplingParams,
)

from ._messages import to_core_messages
from ._responses import (
    ChatStreamConverter,
    CompletionStreamConverter,
    chat_response,
    completion_response,
)
from ._tools import resolve_tool_choice, to_core_tools

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["CloudflareLlama2"]

_SAMPLING_FIELDS = (*SAMPLING_FIELDS, "stop", "response_format")
_CHAT_ONLY = ("tools", "tool_choice", "tool_required")
_REMOTE_OPTIONS = ("account_id", "model", "base_url", "gateway", "timeout", "max_retries")
_resolve_lock = threading.Lock()


def _response_format(value: Any) -> Any:
    """Accept a pydantic model class as ``response_format`` (its JSON schema)."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return ResponseFormat(type="json_schema", json_schema=value.model_json_schema())
    return value


class CloudflareLlama2(FunctionCallingLLM):
    """Llama 2 chat with real tool calling, on Workers AI or a local int8 model.

    Args:
        backend: ``"remote"`` (Cloudflare Workers AI, the default), ``"local"`` (the embedded int8
            model, loaded once per process), or a backend object such as
            ``cf_llama2.backends.LocalBackend("meta-llama/Llama-2-7b-chat-hf")``.
        api_token: Workers AI API token (remote only; default ``CLOUDFLARE_API_TOKEN``). Kept
            private: never in ``repr``, serialisation, logs or errors.
        account_id: Cloudflare account id (remote only; default ``CLOUDFLARE_ACCOUNT_ID``).
        model: Workers AI model id (remote only; default ``@cf/meta/llama-2-7b-chat-int8``).
        base_url, gateway, timeout, max_retries: remote connection options.
        max_tokens, temperature, top_p, top_k, seed, repetition_penalty, frequency_penalty,
            presence_penalty, lora: the model page's request fields and ranges; each can be
            overridden per call as a keyword argument (``llm.chat(messages, temperature=0)``).
        stop: up to 4 stop sequences (cut client-side on every backend).
        context_window: overrides the backend's context window in ``metadata``.

    Example:
        >>> from llama_index.core.agent.workflow import FunctionAgent
        >>> llm = CloudflareLlama2(backend="local", temperature=0)
        >>> agent = FunctionAgent(tools=[get_weather], llm=llm)

    Raises:
        ConfigurationError: an unknown backend name, or remote options with a non-remote backend.
        RequestValidationError: a request field is out of the model page's range.
    """

    backend: str = Field(
        default="remote",
        description="'remote' (Workers AI), 'local' (embedded int8 model) or a backend class name.",
    )
    model: str | None = Field(default=None, description="Workers AI model id (remote backend).")
    account_id: str | None = Field(default=None, description="Cloudflare account id (remote).")
    base_url: str | None = Field(default=None, description="API base URL (remote).")
    gateway: str | None = Field(default=None, description="AI Gateway id (remote).")
    timeout: float | None = Field(default=None, description="Request timeout in seconds (remote).")
    max_retries: int | None = Field(default=None, description="Retries on 408/429/5xx (remote).")
    max_tokens: int = Field(default=256, description="Tokens to generate at most (>= 1).")
    temperature: float = Field(default=0.6, description="Sampling temperature, 0..5 (0 greedy).")
    top_p: float | None = Field(default=None, description="Nucleus sampling, 0..2.")
    top_k: int | None = Field(default=None, description="Top-k sampling, 1..50.")
    seed: int | None = Field(default=None, description="Random seed, 1..9999999999.")
    repetition_penalty: float | None = Field(default=None, description="0..2.")
    frequency_penalty: float | None = Field(default=None, description="0..2.")
    presence_penalty: float | None = Field(default=None, description="0..2.")
    lora: str | None = Field(default=None, description="LoRA adapter name or path.")
    stop: list[str] | None = Field(default=None, description="Up to 4 stop sequences.")
    context_window: int | None = Field(
        default=None, description="Context window override; default: the backend's."
    )

    _api_token: SecretStr | None = PrivateAttr(default=None)
    _backend_obj: Backend | None = PrivateAttr(default=None)
    _owns_backend: bool = PrivateAttr(default=False)

    def __init__(
        self,
        backend: str | Backend = "remote",
        *,
        api_token: str | SecretStr | None = None,
        **data: Any,
    ) -> None:
        given_object: Backend | None = None
        if isinstance(backend, str):
            name = backend.strip().lower()
            if name not in ("remote", "local"):
                raise ConfigurationError(
                    f"backend={backend!r} is not a backend name; use 'remote' (Workers AI), "
                    "'local' (the embedded int8 model) or a backend object such as "
                    "cf_llama2.backends.LocalBackend('meta-llama/Llama-2-7b-chat-hf')"
                )
        else:
            given_object = resolve_backend(backend)
            name = type(backend).__name__
        if name != "remote":
            extra = [k for k in _REMOTE_OPTIONS if data.get(k) is not None]
            if api_token is not None:
                extra.append("api_token")
            if extra:
                raise ConfigurationError(
                    f"{', '.join(extra)} only apply to backend='remote'; backend={name!r} was "
                    "given. For another local model pass "
                    "backend=cf_llama2.backends.LocalBackend('<model id or path>')."
                )
        super().__init__(backend=name, **data)
        SamplingParams(**self._sampling_defaults())  # range check, raises RequestValidationError
        if api_token is not None:
            self._api_token = (
                api_token if isinstance(api_token, SecretStr) else SecretStr(api_token)
            )
        self._backend_obj = given_object

    @classmethod
    def class_name(cls) -> str:
        return "CloudflareLlama2"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the API token or a resolved ``"remote"``/``"local"`` backend.

        An unpickled copy reads the token from ``CLOUDFLARE_API_TOKEN`` and resolves its backend
        again on first use. A backend object passed in is kept when it can be pickled.
        """
        private: dict[str, Any] = {"_api_token": None, "_owns_backend": False}
        if self.backend in ("remote", "local"):
            private["_backend_obj"] = None
        state = dict(super().__getstate__())  # drops what cannot be pickled
        kept = state.get("__pydantic_private__") or {}
        state["__pydantic_private__"] = {"_backend_obj": None, **kept, **private}
        return state

    # -- backend ----------------------------------------------------------------------------

    def _get_backend(self) -> Backend:
        """The backend, created on first use."""
        if self._backend_obj is None:
            if self.backend not in ("remote", "local"):
                raise ConfigurationError(
                    f"this CloudflareLlama2 was built with a {self.backend} backend object that "
                    "was not carried over (it could not be pickled, or it was closed); create "
                    "the LLM again with backend=<the backend object>"
                )
            with _resolve_lock:
                if self._backend_obj is None:
                    options: dict[str, Any] = {k: getattr(self, k) for k in _REMOTE_OPTIONS}
                    if self._api_token is not None:
                        options["api_token"] = self._api_token.get_secret_value()
                    self._backend_obj = resolve_backend(self.backend, **options)
                    self._owns_backend = self.backend == "remote"
        return self._backend_obj

    def close(self) -> None:
        """Close a remote backend this object created (shared and given backends stay open)."""
        if self._owns_backend and self._backend_obj is not None:
            self._backend_obj.close()
            self._backend_obj = None
            self._owns_backend = False

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._owns_backend and self._backend_obj is not None:
            await self._backend_obj.aclose()
            self._backend_obj = None
            self._owns_backend = False

    @property
    def metadata(self) -> LLMMetadata:
        """Context window (the backend's; 4096 for Llama 2), output tokens and capabilities."""
        info = self._get_backend().info
        return LLMMetadata(
            context_window=self.context_window or info.context_window,
            num_output=self.max_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=info.model,
            system_role=MessageRole.SYSTEM,
        )

    # -- requests ---------------------------------------------------------------------------

    def _sampling_defaults(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in _SAMPLING_FIELDS if k != "response_format"}
        return {k: v for k, v in values.items() if v is not None}

    def _sampling(self, kwargs: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
        """Instance defaults overridden by per-call kwargs; unknown kwargs raise."""
        unknown = sorted(k for k in kwargs if k not in _SAMPLING_FIELDS and k not in allowed)
        if unknown:
            accepted = ", ".join((*_SAMPLING_FIELDS, *allowed))
            raise RequestValidationError(
                f"unknown keyword argument(s) {', '.join(unknown)}; this call accepts {accepted}",
                field=unknown[0],
                value=unknown,
                limit=accepted,
            )
        params = self._sampling_defaults()
        for key in _SAMPLING_FIELDS:
            if kwargs.get(key) is not None:
                params[key] = kwargs[key]
        if "response_format" in params:
            params["response_format"] = _response_format(params["response_format"])
        return params

    def _chat_request(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, stream: bool
    ) -> ChatRequest:
        params = self._sampling(kwargs, _CHAT_ONLY)
        tools = to_core_tools(kwargs.get("tools"))
        choice = resolve_tool_choice(
            kwargs.get("tool_choice"), bool(kwargs.get("tool_required", False)), tools
        )
        return ChatRequest(
            messages=to_core_messages(messages),
            tools=tools,
            tool_choice=choice,
            stream=stream,
            **params,
        )

    def _prompt_request(
        self, prompt: str, formatted: bool, kwargs: dict[str, Any], *, stream: bool
    ) -> PromptRequest:
        if any(k in kwargs for k in _CHAT_ONLY):
            raise RequestValidationError(
                "complete() takes no tools; use chat() or chat_with_tools() to call tools",
                field="tools",
                value=sorted(k for k in kwargs if k in _CHAT_ONLY),
                limit="chat only",
            )
        params = self._sampling(kwargs, ("raw",))
        to_prompt = self.completion_to_prompt
        if not formatted and to_prompt is not None:
            prompt = to_prompt(prompt)
        return PromptRequest(
            prompt=prompt, raw=bool(kwargs.get("raw", False)), stream=stream, **params
        )

    # -- chat -------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer a conversation (per-call kwargs override the request fields; ``tools`` and
        ``tool_choice`` are accepted too)."""
        request = self._chat_request(messages, kwargs, stream=False)
        return chat_response(self._get_backend().run(request))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async :meth:`chat`."""
        request = self._chat_request(messages, kwargs, stream=False)
        return chat_response(await self._get_backend().arun(request))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the answer; the last chunk is the complete answer with its tool calls."""
        request = self._chat_request(messages, kwargs, stream=True)
        backend = self._get_backend()

        def gen() -> ChatResponseGen:
            converter = ChatStreamConverter(model=backend.info.model)
            for event in backend.stream(request):
                chunk = converter.feed(event)
                if chunk is not None:
                    yield chunk
            converter.finish()

        return gen()

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async :meth:`stream_chat`."""
        request = self._chat_request(messages, kwargs, stream=True)
        backend = self._get_backend()

        async def gen() -> ChatResponseAsyncGen:
            converter = ChatStreamConverter(model=backend.info.model)
            async for event in backend.astream(request):
                chunk = converter.feed(event)
                if chunk is not None:
                    yield chunk
            converter.finish()

        return gen()

    # -- complete ---------------------------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Complete a prompt (the chat template is applied unless ``raw=True``).

        Args:
            prompt: the prompt text.
            formatted: the prompt already went through ``completion_to_prompt``.
            **kwargs: request fields to override, and ``raw``.
        """
        request = self._prompt_request(prompt, formatted, kwargs, stream=False)
        return completion_response(self._get_backend().run(request))

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """Async :meth:`complete`."""
        request = self._prompt_request(prompt, formatted, kwargs, stream=False)
        return completion_response(await self._get_backend().arun(request))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """Stream a completion; the last chunk carries the usage."""
        request = self._prompt_request(prompt, formatted, kwargs, stream=True)
        backend = self._get_backend()

        def gen() -> CompletionResponseGen:
            converter = CompletionStreamConverter(model=backend.info.model)
            for event in backend.stream(request):
                chunk = converter.feed(event)
                if chunk is not None:
                    yield chunk
            converter.finish()

        return gen()

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async :meth:`stream_complete`."""
        request = self._prompt_request(prompt, formatted, kwargs, stream=True)
        backend = self._get_backend()

        async def gen() -> CompletionResponseAsyncGen:
            converter = CompletionStreamConverter(model=backend.info.model)
            async for event in backend.astream(request):
                chunk = converter.feed(event)
                if chunk is not None:
                    yield chunk
            converter.finish()

        return gen()

    # -- function calling -------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` arguments for a tool-calling turn.

        ``tool_required=True`` forces a call (grammar-enforced on the local backend);
        ``tool_choice`` may name the tool to call. ``allow_parallel_tool_calls=False`` keeps the
        first call of the answer (see ``_validate_chat_with_tools_response``).
        """
        core_tools = to_core_tools(tools)
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": core_tools,
            "tool_choice": resolve_tool_choice(tool_choice, tool_required, core_tools),
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call when parallel calls are not allowed."""
        if allow_parallel_tool_calls:
            return response
        message = response.message
        calls = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
        if len(calls) > 1:
            first = calls[0]
            message.blocks = [
                b for b in message.blocks if not isinstance(b, ToolCallBlock) or b is first
            ]
            legacy = message.additional_kwargs.get("tool_calls")
            if isinstance(legacy, list) and legacy:
                message.additional_kwargs["tool_calls"] = legacy[:1]
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The tool calls of a response (complete, or a partial stream chunk).

        Partial chunks carry the arguments received so far as JSON text; they are parsed
        leniently (incomplete JSON gives the keys complete so far).

        Raises:
            ValueError: no tool call and ``error_on_no_tool_call=True``; the message names any
                call the model attempted that could not be parsed.
        """
        message = response.message
        selections = [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=_lenient_arguments(block.tool_kwargs),
            )
            for block in message.blocks
            if isinstance(block, ToolCallBlock) and block.tool_name
        ]
        if not selections:
            selections = [
                _selection_from_legacy(raw)
                for raw in message.additional_kwargs.get("tool_calls") or []
            ]
        if not selections and error_on_no_tool_call:
            invalid = message.additional_kwargs.get("invalid_tool_calls") or []
            reasons = "; ".join(f"{c.get('name')}: {c.get('error')}" for c in invalid)
            if invalid:
                detail = (
                    f"The model attempted {len(invalid)} call(s) that could not be used: {reasons}."
                )
                fix = (
                    "Raise max_tokens so the call fits."
                    if "max_tokens" in reasons
                    else "Retry, or force the call with tool_required=True."
                )
            else:
                detail = f"It answered with text: {(message.content or '')[:200]!r}."
                fix = "Pass tool_required=True (or tool_choice='<tool name>') to force a call."
            raise ValueError(
                f"Expected at least one tool call, but got 0 tool calls. {detail} {fix}"
            )
        return selections


def _lenient_arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = parse_partial_json(value)
        except (ValueError, TypeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _selection_from_legacy(raw: Any) -> ToolSelection:
    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    function = get(raw, "function")
    source = function if function is not None else raw
    arguments = get(source, "arguments")
    return ToolSelection(
        tool_id=str(get(raw, "id") or ""),
        tool_name=str(get(source, "name") or ""),
        tool_kwargs=_lenient_arguments(arguments),
    )
