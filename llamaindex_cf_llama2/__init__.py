"""LlamaIndex adapter: ``CloudflareLlama2``, a ``FunctionCallingLLM`` for Llama 2 chat.

Runs ``FunctionAgent``, ``ReActAgent`` and structured output (``structured_predict``,
``as_structured_llm``) on Cloudflare Workers AI (``backend="remote"``), the embedded local int8
model (``backend="local"``) or any backend object. Importing this package does not import torch.
"""

from __future__ import annotations

from cf_llama2 import __version__
from cf_llama2.errors import MissingDependencyError

try:
    from .llm import CloudflareLlama2
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] != "llama_index":
        raise
    raise MissingDependencyError(
        "llama-index-core", "llamaindex", "llamaindex_cf_llama2 (the LlamaIndex adapter)"
    ) from exc

__all__ = ["CloudflareLlama2", "__version__"]
