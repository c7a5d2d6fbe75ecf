"""Fields and request building shared by the chat model and the text-completion LLM.

Both classes inherit :class:`CloudflareLlama2Params`: the backend choice, the remote options and
every request field of the model page. Per-call keyword arguments override the fields; an unknown
keyword raises instead of being dropped.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr

from cf_llama2 import DEFAULT_MODEL
from cf_llama2.backends.base import Backend
from cf_llama2.backends.factory import resolve_backend
from cf_llama2.errors import ConfigurationError, RequestValidationError
from cf_llama2.schema import SAMPLING_FIELDS, SamplingParams

__all__ = [
    "ACCOUNT_ID_ENV",
    "API_TOKEN_ENV",
    "REMOTE_OPTIONS",
    "SAMPLING_FIELDS",
    "CloudflareLlama2Params",
    "sampling_overrides",
]

API_TOKEN_ENV = ("CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN")
ACCOUNT_ID_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID")

# Options that configure the remote backend only.
REMOTE_OPTIONS = frozenset(
    {"account_id", "api_token", "model", "base_url", "gateway", "timeout", "max_retries"}
)


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

    _backend: Backend | None = PrivateAttr(default=None)
    _backend_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def get_backend(self) -> Backend:
        """The backend object, created on first use and then reused.

        Raises:
            cf_llama2.errors.ConfigurationError: unknown backend name, missing credentials, or
                the local extra is not installed.
        """
        if self._backend is not None:
            return self._backend
        with self._backend_lock:
            if self._backend is None:
                self._check_remote_options()
                self._backend = resolve_backend(
                    self.backend,
                    account_id=self.account_id,
                    api_token=self.api_token,
                    model=self.model,
                    base_url=self.base_url,
                    gateway=self.gateway,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
                owned = self._owned_backend()
                if owned is not None:
                    # Close the HTTP connections of a backend we created when we are collected.
                    weakref.finalize(self, owned.close)
            return self._backend

    def _check_remote_options(self) -> None:
        """Remote-only options given with another backend would be ignored: refuse them."""
        if self.backend_kind() == "remote":
            return
        given = sorted(REMOTE_OPTIONS & self.model_fields_set)
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
        info = getattr(self.backend, "info", None)
        return str(getattr(info, "provider", "custom"))

    def __init__(self, **data: Any) -> None:
        """Check the request fields against the model page's ranges at construction.

        Raises:
            RequestValidationError: a field is out of range (named, with the range and value).
        """
        super().__init__(**data)
        SamplingParams(**self.default_sampling())

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where LangChain finds the secret; its value never appears in dumps."""
        return {"api_token": "CLOUDFLARE_API_TOKEN"}

    def _model_name(self) -> str:
        """The model id the backend answers with (resolves the backend)."""
        return self.get_backend().info.model or self.model

    def resolved_model_name(self) -> str:
        """The model id for tracing and ``response_metadata``, without loading anything."""
        if self._backend is not None:
            return self._backend.info.model or self.model
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

    def _owned_backend(self) -> Backend | None:
        """The resolved backend when this object created it (not a shared or given one)."""
        if self._backend is None or not isinstance(self.backend, str):
            return None
        return None if self.backend_kind() == "local" else self._backend

    def close(self) -> None:
        """Release the connections of a backend this object created.

        A backend object passed in stays open (its owner closes it); the shared local model
        stays loaded. The next call creates a fresh backend.
        """
        owned = self._owned_backend()
        self._backend = None
        if owned is not None:
            owned.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        owned = self._owned_backend()
        self._backend = None
        if owned is not None:
            await owned.aclose()


def sampling_overrides(
    defaults: Mapping[str, Any],
    stop: list[str] | None,
    kwargs: Mapping[str, Any],
    *,
    allowed_extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge the object's request fields, the call's ``stop`` and per-call keyword arguments.

    Raises:
        RequestValidationError: a keyword argument that is not a request field.
    """
    out = dict(defaults)
    for key, value in kwargs.items():
        if key in SAMPLING_FIELDS or key in allowed_extra:
            if value is not None:
                out[key] = value
        elif key == "stop":
            if value is not None:
                stop = value
        else:
            valid = ", ".join((*SAMPLING_FIELDS, "stop", *allowed_extra))
            raise RequestValidationError(
                f"unknown keyword argument {key!r} for a cf-llama2 call; the per-call options "
                f"are: {valid}",
                field=key,
                value=type(value).__name__,
                limit=valid,
            )
    if stop is not None:
        out["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return out
