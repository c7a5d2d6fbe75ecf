"""OpenAI-compatible endpoints of the local server, mirroring Workers AI's ``/ai/v1`` paths.

``POST /client/v4/accounts/{account_id}/ai/v1/chat/completions`` and ``GET .../ai/v1/models``
(also under ``/v1/``), so the ``openai`` SDK, LangChain's ``ChatOpenAI``, LlamaIndex's
``OpenAILike`` and other OpenAI clients work by changing their base URL. Requests become the same
core requests as on ``/ai/run`` (same backends, grammar-forced tool calls, auth and queue).
"""

from __future__ import annotations

from .endpoint import OPENAI_PREFIXES, OpenAIEndpoints, openai_not_found
from .errors import error_body
from .request import OpenAIChatRequest, openai_body_to_request
from .response import ChunkEncoder, result_to_completion

__all__ = [
    "OPENAI_PREFIXES",
    "ChunkEncoder",
    "OpenAIChatRequest",
    "OpenAIEndpoints",
    "error_body",
    "openai_body_to_request",
    "openai_not_found",
    "result_to_completion",
]
