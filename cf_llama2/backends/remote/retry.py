"""Retry policy as pure functions: which failures to retry and how long to wait.

Retried: 408 (timeouts, also the client's own), 429 (rate limits), 5xx and connection errors.
Never retried: every other 4xx, validation errors, bad responses. The wait is a jittered
exponential backoff, or the server's ``Retry-After`` when it sent one (capped), plus a random
spread, so that clients told to wait the same time do not all come back at the same instant.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    IncompleteStreamError,
    RateLimitError,
    ServerError,
)

__all__ = ["RetryPolicy", "give_up_reason", "is_retryable", "parse_retry_after"]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    Returns ``None`` for a missing or unreadable value; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN or infinite
        return None
    return max(0.0, seconds)


def is_retryable(error: BaseException) -> bool:
    """Whether ``error`` is worth another attempt (408, 429, 5xx, connection failures)."""
    if isinstance(error, IncompleteStreamError):
        return False
    if isinstance(error, (APIConnectionError, APITimeoutError, RateLimitError, ServerError)):
        return True
    if isinstance(error, APIError) and error.status_code is not None:
        return error.status_code in (408, 429) or error.status_code >= 500
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: the base wait in seconds before the first retry.
        max_delay: the longest backoff wait in seconds.
        max_retry_after: the longest ``Retry-After`` wait honoured, in seconds; a longer one
            is not waited for (the error is raised instead).
        jitter: the fraction of the backoff that is randomised (0 to 1); after a
            ``Retry-After`` of ``s`` seconds the wait is ``s`` plus a random part of
            ``jitter * max(s, min(initial_delay, 1))`` seconds.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0; got {self.max_retries}")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds; got {getattr(self, name)}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in 0..1; got {self.jitter}")

    def backoff(self, retry: int, *, rand: Callable[[], float] = random.random) -> float:
        """The jittered exponential wait before retry number ``retry`` (1-based)."""
        base = min(self.max_delay, self.initial_delay * 2.0 ** max(0, retry - 1))
        return base * (1 - self.jitter * rand())

    def delay(
        self,
        retry: int,
        error: BaseException,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """The wait before retry number ``retry`` after ``error``, or ``None`` to give up.

        Args:
            retry: the 1-based number of the retry about to happen.
            error: the failure of the previous attempt.
            retry_after: the server's ``Retry-After`` in seconds (defaults to the error's
                ``retry_after`` attribute, which rate-limit errors carry).
            rand: a source of uniform numbers in [0, 1) for the jitter.

        Gives up when the error is not retryable, the retries are used up, or the server's
        ``Retry-After`` is longer than :attr:`max_retry_after`. A ``Retry-After`` wait is never
        shorter than the server asked, and gets up to ``jitter * max(s, min(initial_delay, 1))``
        seconds more.
        """
        if retry > self.max_retries or not is_retryable(error):
            return None
        if retry_after is None:
            retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            if retry_after > self.max_retry_after:
                return None
            spread = self.jitter * max(float(retry_after), min(self.initial_delay, 1.0))
            return float(retry_after) + spread * rand()
        return self.backoff(retry, rand=rand)


def give_up_reason(policy: RetryPolicy, retry: int, error: BaseException) -> str | None:
    """Why a retryable ``error`` was not retried once more, in words (``None``: not retryable).

    Args:
        policy: the policy in effect.
        retry: the 1-based number of the retry that :meth:`RetryPolicy.delay` refused.
        error: the failure of the last attempt.
    """
    if not is_retryable(error):
        return None
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after > policy.max_retry_after:
        return (
            f"Not retried: the server asked to wait {retry_after:g} s, longer than "
            f"max_retry_after={policy.max_retry_after:g} s."
        )
    if policy.max_retries == 0:
        return "Not retried (max_retries=0)."
    n = policy.max_retries
    return f"Gave up after {n} {'retry' if n == 1 else 'retries'} (max_retries={n})."
