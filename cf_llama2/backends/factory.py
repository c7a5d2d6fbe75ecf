"""Pick a backend from what a user passes to an adapter: ``"remote"``, ``"local"`` or an object.

Both framework adapters call :func:`resolve_backend`, so ``backend="local"`` means the same thing
in LangChain and LlamaIndex, and the embedded default model is loaded once per process however
many chat-model objects use it.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import ConfigurationError
from .base import Backend, is_backend

__all__ = ["default_local_backend", "resolve_backend"]

_default_local: Backend | None = None
_default_local_lock = threading.Lock()


def default_local_backend() -> Backend:
    """The process-wide ``LocalBackend()`` on the embedded default model (created on first use)."""
    global _default_local
    with _default_local_lock:
        if _default_local is None:
            from .local import LocalBackend

            _default_local = LocalBackend()
        return _default_local


def resolve_backend(backend: Any = "remote", **remote_options: Any) -> Backend:
    """Turn an adapter's ``backend`` argument into a backend object.

    Args:
        backend: ``"remote"`` (Workers AI; ``remote_options`` go to ``RemoteBackend``),
            ``"local"`` (the shared embedded int8 model), or any object with the backend protocol.
        **remote_options: ``account_id``, ``api_token``, ``model``, ``base_url``, ``gateway``,
            ``timeout``, ``max_retries``... for the remote backend; ``None`` values are left out.

    Raises:
        ConfigurationError: an unknown backend name or an object that is not a backend.
    """
    if isinstance(backend, str):
        name = backend.strip().lower()
        if name == "remote":
            from .remote import RemoteBackend

            options = {k: v for k, v in remote_options.items() if v is not None}
            return RemoteBackend(**options)
        if name == "local":
            return default_local_backend()
        raise ConfigurationError(
            f"backend={backend!r} is not a backend name; use 'remote' (Workers AI), 'local' "
            "(the embedded int8 model) or a backend object such as "
            "cf_llama2.backends.LocalBackend('meta-llama/Llama-2-7b-chat-hf')"
        )
    if is_backend(backend):
        return backend  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"backend must be 'remote', 'local' or a backend object (with run/stream/arun/astream); "
        f"got {type(backend).__name__}"
    )
