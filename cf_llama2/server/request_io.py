"""Reading what a client sent: the bearer token and a size-limited JSON body."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    RequestTooLargeError,
    WorkersAIErrorDetail,
)
from .body_decode import decode_json_body
from .connections import BodyBudget

__all__ = ["TokenCheck", "parse_json_body", "read_body"]


class TokenCheck:
    """Checks ``Authorization: Bearer <token>``; with no token configured, every request passes.

    The token is never shown in ``repr`` or in error messages.
    """

    def __init__(self, api_token: str | None) -> None:
        if api_token is not None and (not isinstance(api_token, str) or not api_token.strip()):
            raise ConfigurationError(
                "api_token must be a non-empty string, or None to accept any token"
            )
        self._token = api_token.strip().encode() if api_token else None

    @property
    def enabled(self) -> bool:
        """Whether requests must carry the token."""
        return self._token is not None

    def __repr__(self) -> str:
        return f"TokenCheck(enabled={self.enabled})"

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise unless ``headers`` carry the configured bearer token.

        Raises:
            AuthenticationError: the header is missing, not a bearer token, or the wrong token
                (HTTP 401, code 10000).
        """
        if self._token is None:
            return
        value = headers.get("authorization", "")
        scheme, _, given = value.partition(" ")
        if not value:
            reason = "the Authorization header is missing; send 'Authorization: Bearer <token>'"
        elif scheme.lower() != "bearer" or not given.strip():
            reason = "the Authorization header is not 'Bearer <token>'"
        elif not hmac.compare_digest(given.strip().encode(), self._token):
            reason = "the bearer token is not the one this server was started with"
        else:
            return
        message = f"Authentication error: {reason}"
        raise AuthenticationError(
            message, status_code=401, errors=[WorkersAIErrorDetail(code=10000, message=message)]
        )


def _too_large(size: str, limit: int) -> RequestTooLargeError:
    message = (
        f"Request too large: the body is {size} bytes, over this server's limit of {limit} bytes; "
        "shorten the messages, or start the server with a larger max_body_bytes"
    )
    return RequestTooLargeError(
        message, status_code=413, errors=[WorkersAIErrorDetail(code=3006, message=message)]
    )


async def read_body(
    headers: Mapping[str, str],
    chunks: AsyncIterator[bytes],
    *,
    limit: int,
    budget: BodyBudget | None = None,
) -> bytes:
    """Read the request body, refusing it as soon as it passes ``limit`` bytes.

    With a ``budget``, every chunk is counted in it as it arrives; on success the caller gives
    ``len(body)`` back once the body is decoded (on failure it is given back here).

    Raises:
        RequestTooLargeError: the declared or actual size is over ``limit`` (HTTP 413, 3006).
        RateLimitError: the budget of bytes in flight is spent (HTTP 429, 3040).
    """
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(declared.strip(), limit)
    body = bytearray()
    try:
        async for chunk in chunks:
            if budget is not None:
                budget.take(len(chunk))
            body.extend(chunk)
            if len(body) > limit:
                raise _too_large(f"more than {limit}", limit)
    except BaseException:
        if budget is not None:
            budget.give_back(len(body))
        raise
    return bytes(body)


def parse_json_body(raw: bytes) -> Any:
    """Decode a JSON body (see :func:`~cf_llama2.server.body_decode.decode_json_body`).

    Raises:
        RequestValidationError: empty, not UTF-8, not JSON, nested too deep or holding a lone
            surrogate (HTTP 400, code 5006).
    """
    return decode_json_body(raw)
