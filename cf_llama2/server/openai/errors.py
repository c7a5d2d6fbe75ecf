"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status is the one the Workers AI route answers, except that an unknown model is 404
(``model_not_found``), as OpenAI answers it. The OpenAI SDKs pick their exception class from
the status (400 ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 413,
429 ``RateLimitError``, 5xx ``InternalServerError``).
"""

from __future__ import annotations

from typing import Any

from ...errors import (
    APIError,
    AuthenticationError,
    CfLlama2Error,
    ModelNotFoundError,
    RateLimitError,
    RequestTooLargeError,
    RequestValidationError,
    status_and_code_for,
)

__all__ = ["error_body", "openai_error"]


def openai_error(
    message: str, *, status: int, kind: str, code: str | None = None, param: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A status and an OpenAI error body."""
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _message(error: BaseException) -> str:
    if isinstance(error, APIError):
        return error.errors[0].message if error.errors else error.message
    if isinstance(error, CfLlama2Error):
        return str(error)
    return "internal error"


def error_body(error: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI error body for ``error``."""
    message = _message(error)
    if isinstance(error, RequestValidationError):
        return openai_error(
            message,
            status=400,
            kind="invalid_request_error",
            code="invalid_value",
            param=error.field or None,
        )
    status, _code = status_and_code_for(error)
    if isinstance(error, AuthenticationError):
        return openai_error(
            message, status=401, kind="invalid_request_error", code="invalid_api_key"
        )
    if isinstance(error, ModelNotFoundError):
        return openai_error(
            message,
            status=404,
            kind="invalid_request_error",
            code="model_not_found",
            param="model",
        )
    if isinstance(error, RateLimitError):
        return openai_error(
            message, status=429, kind="rate_limit_error", code="rate_limit_exceeded"
        )
    if isinstance(error, RequestTooLargeError):
        return openai_error(message, status=413, kind="invalid_request_error", code="too_large")
    if status < 500:
        return openai_error(message, status=status, kind="invalid_request_error")
    return openai_error(message, status=status, kind="server_error")
