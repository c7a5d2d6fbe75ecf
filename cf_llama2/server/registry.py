"""Which backend answers which model name."""

from __future__ import annotations

from collections.abc import Mapping

from ..backends.base import Backend, is_backend
from ..backends.remote.config import DEFAULT_SERVED_MODEL
from ..errors import ConfigurationError, ModelNotFoundError, WorkersAIErrorDetail

__all__ = ["DEFAULT_SERVED_MODEL", "ModelRegistry"]


class ModelRegistry:
    """Model names (as they appear in the URL) mapped to backends.

    Args:
        backends: one backend, served as ``@cf/meta/llama-2-7b-chat-int8``; or a mapping of
            model names to backends.

    Raises:
        ConfigurationError: no backend, an empty name, or an object that is not a backend.
    """

    def __init__(self, backends: Mapping[str, Backend] | Backend) -> None:
        if isinstance(backends, Mapping):
            mapping = dict(backends)
        else:
            mapping = {DEFAULT_SERVED_MODEL: backends}
        if not mapping:
            raise ConfigurationError(
                "the server needs at least one model; pass a backend or {name: backend}"
            )
        self._backends: dict[str, Backend] = {}
        for name, backend in mapping.items():
            if not isinstance(name, str) or not name.strip("/"):
                raise ConfigurationError(f"model names must be non-empty strings; got {name!r}")
            if not is_backend(backend):
                raise ConfigurationError(
                    f"model {name!r} is served by a {type(backend).__name__}, which is not a "
                    "backend (it needs info, run, stream, arun, astream, close, aclose)"
                )
            self._backends[name.strip("/")] = backend

    @property
    def names(self) -> list[str]:
        """The served model names, sorted."""
        return sorted(self._backends)

    def unique_backends(self) -> list[Backend]:
        """Each distinct backend once (a backend may serve several names)."""
        seen: dict[int, Backend] = {}
        for backend in self._backends.values():
            seen.setdefault(id(backend), backend)
        return list(seen.values())

    def get(self, name: str) -> Backend:
        """The backend for ``name``.

        Raises:
            ModelNotFoundError: no model of that name is served (HTTP 400, code 5007).
        """
        backend = self._backends.get(name.strip("/"))
        if backend is None:
            message = (
                f"No such model {name!r} or task; this server serves: {', '.join(self.names)}. "
                "Map more with cf-llama2 serve --model NAME=PATH_OR_ID"
            )
            raise ModelNotFoundError(
                message, status_code=400, errors=[WorkersAIErrorDetail(code=5007, message=message)]
            )
        return backend
