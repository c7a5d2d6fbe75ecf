"""LangChain integration for cf-llama2: Llama 2 chat with real tool calling.

``ChatCloudflareLlama2`` is a chat model (tools, streaming, structured output);
``CloudflareLlama2`` is a text-completion LLM over the prompt shape (with ``raw``), a drop-in for
langchain-community's ``CloudflareWorkersAI``. Both run on Cloudflare Workers AI
(``backend="remote"``, default), on the embedded local int8 model (``backend="local"``) or on any
backend object from :mod:`cf_llama2.backends`.
"""

from __future__ import annotations

from cf_llama2 import __version__
from cf_llama2.errors import MissingDependencyError

try:
    from .chat_models import ChatCloudflareLlama2
    from .llms import CloudflareLlama2
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] != "langchain_core":
        raise
    raise MissingDependencyError(
        "langchain-core", "langchain", "langchain_cf_llama2 (the LangChain adapter)"
    ) from exc

__all__ = ["ChatCloudflareLlama2", "CloudflareLlama2", "__version__"]
