"""Keep secrets out of errors built from a server's answer.

Some proxies and gateways echo the request's ``Authorization`` header (or the token alone) in
their error text. :func:`redact_error` removes the configured secrets, and any ``Bearer ...``
value, from every text an :class:`~cf_llama2.errors.APIError` carries: its message and
``args`` (so ``str``, ``repr`` and tracebacks), ``errors``, ``body`` and ``partial_text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ...errors import APIError, WorkersAIErrorDetail

__all__ = ["MASK", "redact_error", "redact_text"]

MASK = "**********"
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")
_MIN_SECRET = 6  # shorter values would mask ordinary words; real tokens are 40 characters


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each secret and every ``Bearer ...`` value replaced by :data:`MASK`."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    return _BEARER.sub(rf"\1\2{MASK}", text) if "earer" in text or "EARER" in text else text


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {_redact_value(k, secrets): _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def redact_error(error: APIError, secrets: Iterable[str] = ()) -> APIError:
    """Remove ``secrets`` and ``Bearer`` values from ``error`` in place; returns ``error``."""
    found = tuple(s for s in secrets if s)
    error.message = redact_text(error.message, found)
    error.args = tuple(_redact_value(a, found) for a in error.args)
    error.errors = [
        WorkersAIErrorDetail(code=e.code, message=redact_text(e.message, found))
        for e in error.errors
    ]
    error.body = _redact_value(error.body, found)
    partial = getattr(error, "partial_text", None)
    if isinstance(partial, str):
        error.partial_text = redact_text(partial, found)  # type: ignore[attr-defined]
    return error
