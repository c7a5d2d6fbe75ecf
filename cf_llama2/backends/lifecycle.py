"""What both framework adapters do with a backend, framework-free.

* :class:`BackendHandle` -- the backend an adapter object uses: created on first use (never at
  construction), shared between threads, closed when the adapter created it, and safe to
  ``copy.deepcopy`` and ``pickle`` (a copy re-creates a named backend lazily; the API token
  travels with it without ever being shown).
* :func:`merge_call_options` -- the object's request fields overridden by per-call keyword
  arguments, unknown keywords refused.
* :func:`check_arguments` -- unknown constructor arguments refused, naming the nearest valid one.
* :data:`ADAPTER_DEFAULTS` -- the request-field defaults both adapters use.
"""

from __future__ import annotations

import copy
import difflib
import pickle
import threading
import weakref
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ConfigurationError, RequestValidationError
from ..schema import SAMPLING_FIELDS
from .base import Backend, backend_provider
from .factory import resolve_backend

__all__ = [
    "ADAPTER_DEFAULTS",
    "REMOTE_OPTIONS",
    "BackendHandle",
    "check_arguments",
    "merge_call_options",
    "share_in_deepcopy",
]

REMOTE_OPTIONS = (
    "account_id",
    "api_token",
    "model",
    "base_url",
    "gateway",
    "timeout",
    "max_retries",
    "http_client",
    "async_http_client",
)
"""Adapter arguments that configure the remote backend only."""

ADAPTER_DEFAULTS: Mapping[str, Any] = {"temperature": None, "max_tokens": None}
"""Both adapters leave every request field unset by default (``None``): the backend's own
default applies (on Workers AI and the local backend: ``temperature=0.6``, ``max_tokens=256``)."""

_NAMED = ("remote", "local")
_SHARED_OPTIONS = ("http_client", "async_http_client")
"""Options that are live resources: shared by copies, left out of pickles."""


class BackendHandle:
    """The backend of one adapter object.

    Args:
        backend: ``"remote"``, ``"local"`` or a backend object (used as is, never closed here).
        options: the remote options (:data:`REMOTE_OPTIONS`) for a ``"remote"`` backend.

    A named backend is created on first :meth:`get`; a ``"remote"`` one is owned (closed by
    :meth:`close` or when the handle is collected), the shared ``"local"`` model is not.
    """

    def __init__(self, backend: Any = "remote", options: Mapping[str, Any] | None = None) -> None:
        self.spec: Any = backend.strip().lower() if isinstance(backend, str) else backend
        self.options: dict[str, Any] = {k: v for k, v in (options or {}).items() if v is not None}
        self.lost: str | None = None
        """The class name of a backend object that could not be pickled."""
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    @property
    def named(self) -> bool:
        """Whether the backend is given by name (``"remote"``/``"local"``)."""
        return isinstance(self.spec, str)

    @property
    def kind(self) -> str:
        """``"remote"``, ``"local"``, or the provider of a backend object (no I/O)."""
        if isinstance(self.spec, str):
            return self.spec
        return backend_provider(self.spec)

    def peek(self) -> Backend | None:
        """The backend when it exists already (nothing is created)."""
        return self._backend if self.named else self.spec

    def get(self) -> Backend:
        """The backend, created on first use and then reused.

        Raises:
            cf_llama2.errors.ConfigurationError: the backend object was lost in a pickle,
                missing credentials, or the local extra is not installed.
        """
        if not self.named:
            if self.spec is None:
                raise ConfigurationError(
                    f"this object was built with a {self.lost or 'custom'} backend object that "
                    "was not carried over (it could not be pickled); create the object again "
                    "with backend=<the backend object>"
                )
            checked = self._backend
            if checked is None:  # checked once: the check looks up every member statically
                checked = self._backend = resolve_backend(self.spec)
            return checked
        backend = self._backend
        if backend is not None:
            return backend
        with self._lock:
            if self._backend is None:
                created = resolve_backend(self.spec, **self.options)
                if self.spec == "remote":
                    weakref.finalize(self, created.close)
                self._backend = created
            return self._backend

    def close(self) -> None:
        """Close a ``"remote"`` backend this handle created; the next :meth:`get` makes another."""
        owned, self._backend = self._backend, None
        if owned is not None and self.spec == "remote":
            owned.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        owned, self._backend = self._backend, None
        if owned is not None and self.spec == "remote":
            await owned.aclose()

    # -- copying and pickling -----------------------------------------------------------------

    def __copy__(self) -> BackendHandle:
        return self._clone(dict(self.options))

    def __deepcopy__(self, memo: dict[int, Any]) -> BackendHandle:
        """A copy shares a given backend object and live HTTP clients; a named backend is
        created again on first use."""
        options = {
            k: (v if k in _SHARED_OPTIONS else copy.deepcopy(v, memo))
            for k, v in self.options.items()
        }
        return self._clone(options)

    def _clone(self, options: dict[str, Any]) -> BackendHandle:
        clone = BackendHandle(self.spec, options)
        clone.lost = self.lost
        return clone

    def __getstate__(self) -> dict[str, Any]:
        """No lock, no live backend, no HTTP clients; a backend object only when it pickles."""
        spec, lost = self.spec, self.lost
        if not self.named and spec is not None:
            try:
                pickle.dumps(spec)
            except Exception:
                spec, lost = None, type(spec).__name__
        options = {k: v for k, v in self.options.items() if k not in _SHARED_OPTIONS}
        return {"spec": spec, "options": options, "lost": lost}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = state["spec"]
        self.options = dict(state["options"])
        self.lost = state.get("lost")
        self._backend = None
        self._lock = threading.Lock()


def share_in_deepcopy(memo: dict[int, Any] | None, *objects: Any) -> dict[int, Any]:
    """A ``copy.deepcopy`` memo under which ``objects`` (HTTP clients, backend objects: live
    resources) are shared by the copy instead of copied."""
    memo = {} if memo is None else memo
    for obj in objects:
        if obj is not None and not isinstance(obj, str):
            memo[id(obj)] = obj
    return memo


def check_arguments(given: Collection[str], valid: Collection[str], *, owner: str) -> None:
    """Refuse constructor arguments that are not in ``valid``, naming the nearest valid one.

    Raises:
        cf_llama2.errors.ConfigurationError: an unknown argument (``temprature=0`` ->
            "did you mean 'temperature'?").
    """
    unknown = sorted(k for k in given if k not in valid)
    if not unknown:
        return
    hints = []
    for name in unknown:
        near = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise ConfigurationError(
        f"{owner} got unknown argument(s) {', '.join(hints)}; it takes: "
        f"{', '.join(sorted(v for v in valid if not v.startswith('_')))}"
    )


def merge_call_options(
    defaults: Mapping[str, Any],
    stop: Any,
    kwargs: Mapping[str, Any],
    *,
    allowed_extra: Collection[str] = (),
) -> dict[str, Any]:
    """Merge an adapter's request fields, a call's ``stop`` and its keyword arguments.

    ``None`` values leave the default in place; ``stop`` may be a string or a list.

    Raises:
        cf_llama2.errors.RequestValidationError: a keyword argument that is neither a request
            field, ``stop``, nor in ``allowed_extra``.
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
