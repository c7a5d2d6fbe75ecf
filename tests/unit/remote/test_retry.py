"""Retry policy: what is retried, how long to wait, Retry-After."""

from __future__ import annotations

import email.utils
import random

import pytest

from cf_llama2.backends.remote.retry import (
    RetryPolicy,
    give_up_reason,
    is_retryable,
    parse_retry_after,
)
from cf_llama2.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    IncompleteStreamError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    RequestValidationError,
    ServerError,
    error_from_response,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0), ("-4", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("x"),
        ServerError("x", status_code=503),
        APITimeoutError("x"),
        APIConnectionError("x"),
        error_from_response(502, None, text="Bad gateway"),
        error_from_response(408, {"errors": [{"code": 3007, "message": "t"}]}),
    ],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("x"),
        AuthenticationError("x"),
        PermissionDeniedError("x"),
        ModelNotFoundError("x"),
        RequestTooLargeError("x"),
        BadResponseError("x", status_code=200),
        IncompleteStreamError("x"),
        RequestValidationError("x"),
        ValueError("x"),
        error_from_response(409, None, text="conflict"),
    ],
)
def test_other_errors_are_never_retried(error: Exception) -> None:
    assert not is_retryable(error)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(max_retries=10, initial_delay=0.5, max_delay=4.0, jitter=0.25)
    assert [policy.backoff(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
    ]
    assert policy.backoff(2, rand=lambda: 1.0) == pytest.approx(0.75)
    assert 0.75 <= policy.backoff(2) <= 1.0


def test_delay_honours_retry_after_and_gives_up() -> None:
    policy = RetryPolicy(max_retries=2, max_retry_after=10.0)
    limited = RateLimitError("x", retry_after=3.0)
    # Never shorter than Retry-After, and at most jitter * Retry-After longer.
    assert policy.delay(1, limited, rand=lambda: 0.0) == 3.0
    assert policy.delay(1, limited, rand=lambda: 1.0) == pytest.approx(3.75)
    assert 3.0 <= (policy.delay(1, limited) or 0) <= 3.75
    server = ServerError("x", status_code=503)
    assert policy.delay(1, server, retry_after=2.0, rand=lambda: 0.0) == 2.0
    assert policy.delay(3, limited) is None  # retries used up
    assert policy.delay(1, RateLimitError("x", retry_after=11.0)) is None  # too long to wait
    assert policy.delay(1, BadRequestError("x")) is None
    assert RetryPolicy(max_retries=0).delay(1, limited) is None


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"initial_delay": -1.0}, {"jitter": 2.0}])
def test_bad_policy_values_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_after_waits_are_spread_so_clients_do_not_return_together() -> None:
    # 16 clients told "Retry-After: 1" at the same moment (each with its own random source).
    policy = RetryPolicy()
    waits = [
        policy.delay(1, RateLimitError("x", retry_after=1.0), rand=random.Random(i).random)
        for i in range(16)
    ]
    assert all(w is not None and 1.0 <= w <= 1.25 for w in waits)
    assert len({round(w or 0, 3) for w in waits}) >= 12  # not in lockstep
    assert max(w or 0 for w in waits) - min(w or 0 for w in waits) >= 0.1
    # Retry-After: 0 is spread too (over jitter * min(initial_delay, 1) = 0.125 s).
    zero = [policy.delay(1, RateLimitError("x", retry_after=0.0)) or 0 for _ in range(64)]
    assert 0.0 < max(zero) <= 0.125


def test_give_up_reason_says_what_happened() -> None:
    assert give_up_reason(RetryPolicy(max_retries=0), 1, ServerError("x", status_code=500)) == (
        "Not retried (max_retries=0)."
    )
    assert give_up_reason(RetryPolicy(max_retries=2), 3, ServerError("x", status_code=500)) == (
        "Gave up after 2 retries (max_retries=2)."
    )
    slow = RateLimitError("x", retry_after=120.0)
    assert "longer than max_retry_after=60 s" in (give_up_reason(RetryPolicy(), 1, slow) or "")
    assert give_up_reason(RetryPolicy(), 1, BadRequestError("x")) is None
