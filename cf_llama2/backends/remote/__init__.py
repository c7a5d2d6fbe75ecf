"""The remote Workers AI backend (sync and async over httpx).

``RemoteBackend`` is imported on first use, so the light modules here (``config``, ``sse``,
``retry``) can be imported without httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import RemoteBackend

__all__ = ["RemoteBackend"]


def __getattr__(name: str) -> Any:
    if name == "RemoteBackend":
        from .backend import RemoteBackend

        return RemoteBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
