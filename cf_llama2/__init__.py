"""cf-llama2: Llama 2 chat with real tool calling on Workers AI or a local int8 model.

The core has no LangChain, LlamaIndex or torch import: those live in the adapters
(``langchain_cf_llama2``, ``llamaindex_cf_llama2``) and in the lazily imported local backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends.base import Backend, BackendInfo
from .backends.remote.config import DEFAULT_MODEL
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    CfLlama2Error,
    ConfigurationError,
    EndpointNotFoundError,
    IncompleteStreamError,
    MissingDependencyError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    RequestValidationError,
    ServerError,
)
from .schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    InvalidToolCall,
    Message,
    PromptRequest,
    ResponseFormat,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
    parse_request,
)
from .schema.reducer import reduce_events
from .tools import FunctionDef, Tool, normalize_tool

if TYPE_CHECKING:
    from .backends.local import LocalBackend
    from .backends.remote import RemoteBackend

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "Backend",
    "BackendInfo",
    "BadRequestError",
    "BadResponseError",
    "CfLlama2Error",
    "ChatRequest",
    "ChatResult",
    "ConfigurationError",
    "EndEvent",
    "EndpointNotFoundError",
    "FunctionDef",
    "IncompleteStreamError",
    "InvalidToolCall",
    "LocalBackend",
    "Message",
    "MissingDependencyError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "PromptRequest",
    "RateLimitError",
    "RemoteBackend",
    "RequestTooLargeError",
    "RequestValidationError",
    "ResponseFormat",
    "ServerError",
    "TextDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "UsageEvent",
    "__version__",
    "normalize_tool",
    "parse_request",
    "reduce_events",
]


def __getattr__(name: str) -> Any:
    if name in ("RemoteBackend", "LocalBackend"):
        from . import backends

        return getattr(backends, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
