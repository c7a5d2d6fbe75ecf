"""Retry policy: what is retried, how long to wait, Retry-After."""

from __future__ import annotations

import email.utils

import pytest

from cf_llama2.backends.remote.retry import RetryPolicy, is_retryable, parse_retry_after
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
    assert policy.delay(1, limited) == 3.0
    assert policy.delay(1, ServerError("x", status_code=503), retry_after=2.0) == 2.0
    assert policy.delay(3, limited) is None  # retries used up
    assert policy.delay(1, RateLimitError("x", retry_after=11.0)) is None  # too long to wait
    assert policy.delay(1, BadRequestError("x")) is None
    assert RetryPolicy(max_retries=0).delay(1, limited) is None


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"initial_delay": -1.0}, {"jitter": 2.0}])
def test_bad_policy_values_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs)).split("_")[0]):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
