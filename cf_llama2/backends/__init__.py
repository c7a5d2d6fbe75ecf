"""Backends: the remote Workers AI API and the local int8 Transformers model.

``LocalBackend`` is imported lazily so that ``import cf_llama2.backends`` never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Backend, BackendInfo

if TYPE_CHECKING:
    from .local import LocalBackend
    from .remote import RemoteBackend

__all__ = ["Backend", "BackendInfo", "LocalBackend", "RemoteBackend"]


def __getattr__(name: str) -> Any:
    if name == "RemoteBackend":
        from .remote import RemoteBackend

        return RemoteBackend
    if name == "LocalBackend":
        from .local import LocalBackend

        return LocalBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
