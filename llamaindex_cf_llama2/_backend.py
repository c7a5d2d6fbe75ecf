"""Backend resolution for ``CloudflareLlama2``: validate the ``backend`` argument, create the
``"remote"``/``"local"`` backend on first use, and keep secrets and live backends out of pickles."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from llama_index.core.bridge.pydantic import SecretStr

from cf_llama2.backends.base import Backend
from cf_llama2.backends.factory import resolve_backend
from cf_llama2.errors import ConfigurationError

__all__ = [
    "REMOTE_OPTIONS",
    "RESOLVE_LOCK",
    "backend_name",
    "check_recreatable",
    "create_backend",
    "pickle_private_state",
]

REMOTE_OPTIONS = ("account_id", "model", "base_url", "gateway", "timeout", "max_retries")
RESOLVE_LOCK = threading.Lock()
"""Serialises the first-use creation of named backends (the local model loads once)."""

_NAMED = ("remote", "local")


def backend_name(
    backend: str | Backend, api_token: str | SecretStr | None, data: Mapping[str, Any]
) -> tuple[str, Backend | None]:
    """The backend field value and the backend object given (``None`` for a name).

    Args:
        backend: ``"remote"``, ``"local"`` or a backend object.
        api_token: the API token given, if any.
        data: the other constructor fields.

    Raises:
        ConfigurationError: an unknown backend name, or remote options with a non-remote backend.
    """
    given_object: Backend | None = None
    if isinstance(backend, str):
        name = backend.strip().lower()
        if name not in _NAMED:
            raise ConfigurationError(
                f"backend={backend!r} is not a backend name; use 'remote' (Workers AI), "
                "'local' (the embedded int8 model) or a backend object such as "
                "cf_llama2.backends.LocalBackend('meta-llama/Llama-2-7b-chat-hf')"
            )
    else:
        given_object = resolve_backend(backend)
        name = type(backend).__name__
    if name != "remote":
        extra = [k for k in REMOTE_OPTIONS if data.get(k) is not None]
        if api_token is not None:
            extra.append("api_token")
        if extra:
            raise ConfigurationError(
                f"{', '.join(extra)} only apply to backend='remote'; backend={name!r} was "
                "given. For another local model pass "
                "backend=cf_llama2.backends.LocalBackend('<model id or path>')."
            )
    return name, given_object


def check_recreatable(name: str) -> None:
    """Raise when a backend named ``name`` cannot be created again (a lost backend object).

    Raises:
        ConfigurationError: ``name`` is the class name of a backend object that is gone.
    """
    if name not in _NAMED:
        raise ConfigurationError(
            f"this CloudflareLlama2 was built with a {name} backend object that "
            "was not carried over (it could not be pickled, or it was closed); create "
            "the LLM again with backend=<the backend object>"
        )


def create_backend(name: str, options: Mapping[str, Any], api_token: SecretStr | None) -> Backend:
    """Create the ``"remote"`` or ``"local"`` backend with the remote connection options."""
    kwargs: dict[str, Any] = dict(options)
    if api_token is not None:
        kwargs["api_token"] = api_token.get_secret_value()
    return resolve_backend(name, **kwargs)


def pickle_private_state(name: str, kept: Mapping[str, Any] | None) -> dict[str, Any]:
    """The private attributes to pickle: no API token, no resolved named backend.

    Args:
        name: the backend field value.
        kept: the private attributes the base class keeps (those that can be pickled).
    """
    private: dict[str, Any] = {"_api_token": None, "_owns_backend": False}
    if name in _NAMED:
        private["_backend_obj"] = None
    return {"_backend_obj": None, **(kept or {}), **private}
