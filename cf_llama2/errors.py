"""One error tree for every backend, adapter and the server.

Every error a user can hit derives from :class:`CfLlama2Error`. API errors keep the HTTP status,
the Workers AI error codes and messages, so code written against the remote API and against the
local backend catch the same classes. (HTTP status, Workers AI code) maps to a class in one place,
:func:`error_from_response`; the server maps back with :func:`status_and_code_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEPRECATION_NOTE",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BadResponseError",
    "CfLlama2Error",
    "ConfigurationError",
    "EndpointNotFoundError",
    "IncompleteStreamError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "RequestValidationError",
    "ServerError",
    "WorkersAIErrorDetail",
    "error_from_response",
    "status_and_code_for",
]

DEPRECATION_NOTE = (
    "Cloudflare lists @cf/meta/llama-2-7b-chat-int8 for deprecation on 2026-05-30; after that "
    "date the hosted model answers 'no such model'. The same model family keeps running locally: "
    "use backend='local' (pip install 'cf-llama2[local]') with "
    "LocalBackend('meta-llama/Llama-2-7b-chat-hf'), or pass another Workers AI model id as model=."
)


@dataclass(frozen=True)
class WorkersAIErrorDetail:
    """One entry of the Workers AI ``errors`` list."""

    code: int | None
    message: str


class CfLlama2Error(Exception):
    """Base class of every error raised by cf-llama2."""


class ConfigurationError(CfLlama2Error, ValueError):
    """The client or backend is configured wrongly (missing credentials, bad option)."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message gives the one command that installs it.

    Attributes:
        package: the missing distribution.
        extra: the cf-llama2 extra it belongs to.
        install: the install command (default ``pip install 'cf-llama2[<extra>]'``).
    """

    def __init__(
        self, package: str, extra: str, purpose: str, *, install: str | None = None
    ) -> None:
        self.package = package
        self.extra = extra
        self.install = install or f"pip install 'cf-llama2[{extra}]'"
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: {self.install}"
        )


class RequestValidationError(CfLlama2Error, ValueError):
    """A request field is missing, malformed or out of range; raised before any I/O.

    Without a ``message``, the message is formatted from the parts:
    ``"{field} must be {limit}; got {got or repr(value)}. {fix}"``.

    Attributes:
        field: dotted path of the offending field (``"temperature"``, ``"messages.2.role"``).
        value: the value that was given (never a secret).
        limit: the allowed range or form, in words.

    Example:
        >>> str(RequestValidationError(field="top_k", limit="an integer in 1..50", value=99))
        'top_k must be an integer in 1..50; got 99'
    """

    def __init__(
        self,
        message: str = "",
        *,
        field: str = "",
        value: Any = None,
        limit: str = "",
        got: str | None = None,
        fix: str = "",
    ) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        if not message:
            message = f"{field} must be {limit}; got {repr(value) if got is None else got}"
            message += f". {fix}" if fix else ""
        super().__init__(message)


class APIError(CfLlama2Error):
    """The service (or the local backend acting as it) answered with an error.

    Attributes:
        status_code: the HTTP status (``None`` for errors raised without a response).
        codes: the Workers AI error codes, in the order received.
        errors: the full ``errors`` entries (code and message).
        body: the decoded response body when it was JSON, else ``None``.
    """

    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: Sequence[WorkersAIErrorDetail] = (),
        body: Any = None,
    ) -> None:
        self.status_code = status_code if status_code is not None else self.default_status
        self.errors = list(errors)
        self.codes = [e.code for e in self.errors if e.code is not None]
        self.body = body
        self.message = message
        super().__init__(message)

    @property
    def code(self) -> int | None:
        """The first Workers AI error code, if any."""
        return self.codes[0] if self.codes else None

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code}")
            parts[-1] += f", code {', '.join(map(str, self.codes))})" if self.codes else ")"
        elif self.codes:
            parts.append(f"(code {', '.join(map(str, self.codes))})")
        return " ".join(parts)


class BadRequestError(APIError):
    """400: the body matches neither input shape, or a field is out of range (5006, 5004)."""

    default_status = 400


class AuthenticationError(APIError):
    """401 / 10000: bad or missing API token."""

    default_status = 401


class PermissionDeniedError(APIError):
    """403: not allowed (licence not accepted, account blocked, ...)."""

    default_status = 403


class ModelNotFoundError(APIError):
    """5007 / 3042: no such model (also what a retired model returns)."""

    default_status = 400


class EndpointNotFoundError(APIError):
    """404 without a Workers AI "no such model" code: nothing answers at the URL.

    A wrong ``base_url=``, ``gateway=`` or ``account_id=`` gives this; a wrong or retired model
    id gives :class:`ModelNotFoundError` instead.
    """

    default_status = 404


class RequestTooLargeError(APIError):
    """413 / 3006: the request is too large (or the prompt exceeds the local context window)."""

    default_status = 413


class RateLimitError(APIError):
    """429: daily allocation used up (3036) or capacity temporarily exceeded (3040).

    Attributes:
        retry_after: seconds to wait, from the ``Retry-After`` header, when the server sent one.
    """

    default_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class APITimeoutError(APIError):
    """408 (3007, 3008) from the service, or the client's own deadline.

    Attributes:
        timeout: the client's deadline in seconds when it ran out (then no HTTP answer came, and
            ``status_code`` is ``None``); ``None`` for a 408 answered by the service.
    """

    default_status = 408

    def __init__(self, message: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout = timeout
        if timeout is not None and "status_code" not in kwargs:
            self.status_code = None  # the client gave up: there is no HTTP status to report


class ServerError(APIError):
    """5xx: an internal error of the service (retried)."""


class BadResponseError(APIError):
    """The answer could not be understood: not JSON, ``result: null`` or ``success: false``."""


class IncompleteStreamError(APIError):
    """The stream closed before ``data: [DONE]``: the answer is truncated, not complete.

    Attributes:
        partial_text: the text received before the connection closed.
    """

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: Any) -> None:
        self.partial_text = partial_text
        super().__init__(message, **kwargs)


class APIConnectionError(APIError):
    """The service could not be reached (DNS, refused connection, reset)."""


_MODEL_NOT_FOUND_CODES = frozenset({5007, 3042})
_TOO_LARGE_CODES = frozenset({3006})
_TIMEOUT_CODES = frozenset({3007, 3008})
_AUTH_CODES = frozenset({10000})
_RATE_CODES = frozenset({3036, 3040})
_SERVER_CODES = frozenset({3043})

_HINTS: dict[type[APIError], str] = {
    AuthenticationError: (
        "Check the API token: pass api_token= or set CLOUDFLARE_API_TOKEN "
        "(a token with the 'Workers AI' permission)."
    ),
    PermissionDeniedError: (
        "The account may not use this model (for Meta models, accept the licence first) "
        "or is blocked."
    ),
    ModelNotFoundError: DEPRECATION_NOTE,
    RequestTooLargeError: "Shorten the messages or lower max_tokens.",
    RateLimitError: "Wait and retry.",
    APITimeoutError: "Retry, or raise timeout=.",
    EndpointNotFoundError: (
        "Nothing answers at this URL: check base_url= (the API root, such as "
        "https://api.cloudflare.com/client/v4), gateway= and account_id=."
    ),
    ServerError: "The service failed.",
}


def _classify(status: int | None, codes: Sequence[int]) -> type[APIError]:
    code_set = set(codes)
    if code_set & _MODEL_NOT_FOUND_CODES:
        return ModelNotFoundError
    if status == 404:
        return EndpointNotFoundError
    if status == 401 or code_set & _AUTH_CODES:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 413 or code_set & _TOO_LARGE_CODES:
        return RequestTooLargeError
    if status == 429 or code_set & _RATE_CODES:
        return RateLimitError
    if status == 408 or code_set & _TIMEOUT_CODES:
        return APITimeoutError
    if (status is not None and status >= 500) or code_set & _SERVER_CODES:
        return ServerError
    if status is not None and 400 <= status < 500:
        return BadRequestError
    return BadResponseError


def _parse_errors(body: Any) -> list[WorkersAIErrorDetail]:
    if not isinstance(body, Mapping):
        return []
    raw = body.get("errors") or []
    out: list[WorkersAIErrorDetail] = []
    if isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)):
        for item in raw:
            if isinstance(item, Mapping):
                code = item.get("code")
                out.append(
                    WorkersAIErrorDetail(
                        code=int(code)
                        if isinstance(code, (int, str)) and str(code).isdigit()
                        else None,
                        message=str(item.get("message", "")),
                    )
                )
            else:
                out.append(WorkersAIErrorDetail(code=None, message=str(item)))
    return out


def error_from_response(
    status: int | None,
    body: Any,
    *,
    retry_after: float | None = None,
    text: str = "",
) -> APIError:
    """Build the typed error for a failed Workers AI answer.

    Args:
        status: the HTTP status code (200 for ``success: false`` answers).
        body: the decoded JSON body, or ``None`` when it was not JSON.
        retry_after: seconds from the ``Retry-After`` header, if any.
        text: the raw body text, used when it was not JSON (cut to 200 characters).

    Returns:
        The matching :class:`APIError` subclass instance (not raised).
    """
    errors = _parse_errors(body)
    codes = [e.code for e in errors if e.code is not None]
    effective_status = status if status is not None and status >= 400 else None
    cls = _classify(effective_status, codes)
    if body is None:
        snippet = text.strip()[:200]
        detail = f"not JSON: {snippet!r}" if snippet else "empty body"
        msg = f"Workers AI answered with a body that is {detail}"
        if cls is EndpointNotFoundError:
            msg = f"HTTP 404 with a body that is not a Workers AI answer ({detail})"
        if effective_status is None:
            cls = BadResponseError
    elif errors:
        msg = "Workers AI error: " + "; ".join(e.message or "(no message)" for e in errors)
    elif effective_status is None:
        msg = "Workers AI answered success=false or result=null without an error message"
    else:
        msg = f"Workers AI answered HTTP {status}"
    hint = _HINTS.get(cls)
    if hint:
        msg = f"{msg}. {hint}"
    kwargs: dict[str, Any] = {"status_code": status, "errors": errors, "body": body}
    if cls is RateLimitError:
        return RateLimitError(msg, retry_after=retry_after, **kwargs)
    return cls(msg, **kwargs)


_STATUS_AND_CODE: dict[type[APIError], tuple[int, int]] = {
    AuthenticationError: (401, 10000),
    PermissionDeniedError: (403, 5016),
    ModelNotFoundError: (400, 5007),
    RequestTooLargeError: (413, 3006),
    RateLimitError: (429, 3040),
    APITimeoutError: (408, 3007),
    BadRequestError: (400, 5006),
    ServerError: (500, 3043),
}


def status_and_code_for(error: BaseException) -> tuple[int, int]:
    """The HTTP status and Workers AI code that the server answers for ``error``.

    The inverse of :func:`error_from_response`, used by ``cf_llama2.server`` so that a client
    gets back the class the local backend raised.
    """
    if isinstance(error, APIError) and error.codes and error.status_code is not None:
        return error.status_code, error.codes[0]
    if isinstance(error, RequestValidationError):
        return 400, 5006
    for cls, pair in _STATUS_AND_CODE.items():
        if isinstance(error, cls):
            return pair
    return 500, 3043
