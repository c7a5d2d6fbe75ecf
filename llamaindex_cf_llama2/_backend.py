"""The ``backend`` argument of ``CloudflareLlama2``: a name or an object, checked at construction.

Creating, sharing, closing, copying and pickling the backend is the core's
:class:`cf_llama2.backends.lifecycle.BackendHandle`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.bridge.pydantic import SecretStr

from cf_llama2.backends.base import Backend
from cf_llama2.backends.factory import resolve_backend
from cf_llama2.backends.lifecycle import REMOTE_OPTIONS
from cf_llama2.errors import ConfigurationError

__all__ = ["backend_name"]

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
