"""LangChain integration for cf-llama2: Llama 2 chat with real tool calling.

``ChatCloudflareLlama2`` is a chat model (tools, streaming, structured output);
``CloudflareLlama2`` is a text-completion LLM over the prompt shape (with ``raw``), a drop-in for
langchain-community's ``CloudflareWorkersAI``. Both run on Cloudflare Workers AI
(``backend="remote"``, default), on the embedded local int8 model (``backend="local"``) or on any
backend object from :mod:`cf_llama2.backends`.
"""

from __future__ import annotations

from cf_llama2 import __version__

from .chat_models import ChatCloudflareLlama2
from .llms import CloudflareLlama2

__all__ = ["ChatCloudflareLlama2", "CloudflareLlama2", "__version__"]
