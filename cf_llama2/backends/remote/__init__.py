"""The remote Workers AI backend (sync and async over httpx)."""

from __future__ import annotations

from .backend import RemoteBackend

__all__ = ["RemoteBackend"]
