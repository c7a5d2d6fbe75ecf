"""The local backend: a Transformers model in bitsandbytes int8, with constrained tool calls.

Importing this package imports neither torch nor transformers; the model loads on first use.
"""

from __future__ import annotations

from .backend import LocalBackend
from .call_shaping import DEFAULT_SHAPING, PREVIOUS_SHAPING, ToolCallShaping
from .embedded import CACHE_ENV, EMBEDDED_MODEL_NAME, prepare_embedded_model

__all__ = [
    "CACHE_ENV",
    "DEFAULT_SHAPING",
    "EMBEDDED_MODEL_NAME",
    "PREVIOUS_SHAPING",
    "LocalBackend",
    "ToolCallShaping",
    "prepare_embedded_model",
]
