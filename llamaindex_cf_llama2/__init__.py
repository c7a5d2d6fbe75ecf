"""LlamaIndex adapter: ``CloudflareLlama2``, a ``FunctionCallingLLM`` for Llama 2 chat.

Runs ``FunctionAgent``, ``ReActAgent`` and structured output (``structured_predict``,
``as_structured_llm``) on Cloudflare Workers AI (``backend="remote"``), the embedded local int8
model (``backend="local"``) or any backend object. Importing this package does not import torch.
"""

from __future__ import annotations

from cf_llama2 import __version__

from .llm import CloudflareLlama2

__all__ = ["CloudflareLlama2", "__version__"]
