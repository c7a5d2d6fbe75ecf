"""The one place that maps (status, Workers AI code) to an error class, and its inverse."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2 import errors as E


def envelope(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {
        "result": None,
        "success": False,
        "errors": [{"code": c, "message": m} for c, m in pairs],
        "messages": [],
    }


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, 5006, E.BadRequestError),
        (400, 5004, E.BadRequestError),
        (400, 5007, E.ModelNotFoundError),
        (404, 3042, E.ModelNotFoundError),
        (401, 10000, E.AuthenticationError),
        (403, 5016, E.PermissionDeniedError),
        (403, 5018, E.PermissionDeniedError),
        (403, 3041, E.PermissionDeniedError),
        (403, 3023, E.PermissionDeniedError),
        (408, 3007, E.APITimeoutError),
        (408, 3008, E.APITimeoutError),
        (413, 3006, E.RequestTooLargeError),
        (429, 3036, E.RateLimitError),
        (429, 3040, E.RateLimitError),
        (500, 3043, E.ServerError),
        (503, 1000, E.ServerError),
    ],
)
def test_every_row_of_the_error_table(status: int, code: int, cls: type[E.APIError]) -> None:
    err = E.error_from_response(status, envelope((code, "boom")))
    assert type(err) is cls
    assert err.status_code == status
    assert err.codes == [code]
    assert err.code == code
    assert "boom" in str(err)
    assert f"HTTP {status}" in str(err)
    assert isinstance(err, E.CfLlama2Error)


def test_model_not_found_mentions_deprecation_and_local_backend() -> None:
    err = E.error_from_response(400, envelope((5007, "No such model")))
    assert "2026-05-30" in str(err)
    assert "backend='local'" in str(err)


def test_rate_limit_keeps_retry_after() -> None:
    err = E.error_from_response(429, envelope((3040, "Capacity")), retry_after=2.5)
    assert isinstance(err, E.RateLimitError)
    assert err.retry_after == 2.5


def test_http_200_failure_is_an_error() -> None:
    err = E.error_from_response(200, {"result": None, "success": False, "errors": []})
    assert type(err) is E.BadResponseError
    assert "success=false" in str(err)
    # A 200 whose codes say what went wrong gets that class.
    err = E.error_from_response(200, envelope((5007, "gone")))
    assert type(err) is E.ModelNotFoundError


def test_stream_error_with_only_a_server_code_is_a_server_error() -> None:
    err = E.error_from_response(None, envelope((3043, "internal")))
    assert type(err) is E.ServerError
    assert err.codes == [3043]


def test_non_json_body() -> None:
    err = E.error_from_response(502, None, text="<html>Bad gateway</html>")
    assert type(err) is E.ServerError
    assert "not JSON" in str(err)
    err = E.error_from_response(200, None, text="")
    assert type(err) is E.BadResponseError
    assert "empty body" in str(err)


def test_several_codes_are_kept_in_order() -> None:
    err = E.error_from_response(400, envelope((5006, "a"), (5004, "b")))
    assert err.codes == [5006, 5004]
    assert [e.message for e in err.errors] == ["a", "b"]


def test_missing_dependency_names_the_extra() -> None:
    err = E.MissingDependencyError("torch", "local", "The local backend")
    assert "pip install 'cf-llama2[local]'" in str(err)
    assert isinstance(err, ImportError)
    assert isinstance(err, E.ConfigurationError)


@pytest.mark.parametrize(
    ("error", "pair"),
    [
        (E.AuthenticationError("x"), (401, 10000)),
        (E.ModelNotFoundError("x"), (400, 5007)),
        (E.RequestTooLargeError("x"), (413, 3006)),
        (E.RateLimitError("x"), (429, 3040)),
        (E.BadRequestError("x"), (400, 5006)),
        (E.RequestValidationError("x"), (400, 5006)),
        (E.APITimeoutError("x"), (408, 3007)),
        (RuntimeError("x"), (500, 3043)),
    ],
)
def test_status_and_code_round_trip(error: BaseException, pair: tuple[int, int]) -> None:
    assert E.status_and_code_for(error) == pair
    if isinstance(error, E.APIError):
        status, code = pair
        back = E.error_from_response(status, envelope((code, "m")))
        assert type(back) is type(error)
