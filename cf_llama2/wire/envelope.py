"""Answer envelopes: ``{"result", "success", "errors", "messages"}`` both ways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import (
    APIError,
    BadResponseError,
    CfLlama2Error,
    error_from_response,
    status_and_code_for,
)
from ..schema import ChatResult, Usage

__all__ = [
    "NOTE_CODE",
    "envelope_result",
    "error_to_envelope",
    "notes_to_messages",
    "result_to_envelope",
]

# ---------------------------------------------------------------------------------------------
# Answers (server side)


def _call_to_wire(name: str | None, arguments: Any) -> dict[str, Any]:
    return {"name": name or "", "arguments": arguments}


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


NOTE_CODE = 10001
"""The code of the notes in the envelope's ``messages`` list (e.g. an ignored request key)."""


def notes_to_messages(notes: Sequence[str]) -> list[dict[str, Any]]:
    """Notes as the envelope's ``messages`` items (``{"code", "message"}``, like ``errors``)."""
    return [{"code": NOTE_CODE, "message": note} for note in notes]


def result_to_envelope(result: ChatResult, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The success envelope for a complete answer (``finish_reason`` is our extension).

    ``notes`` (such as request keys the server ignored) go to the envelope's ``messages``.
    """
    body: dict[str, Any] = {"response": result.response}
    calls = [_call_to_wire(c.name, c.arguments) for c in result.tool_calls]
    calls += [_call_to_wire(c.name, c.arguments) for c in result.invalid_tool_calls]
    if calls:
        body["tool_calls"] = calls
    if result.usage is not None:
        body["usage"] = _usage_dict(result.usage)
    body["finish_reason"] = result.finish_reason
    return {"result": body, "success": True, "errors": [], "messages": notes_to_messages(notes)}


def error_to_envelope(error: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and failure envelope for ``error`` (codes via ``status_and_code_for``)."""
    status, code = status_and_code_for(error)
    if isinstance(error, APIError) and error.errors:
        errors = [
            {"code": e.code if e.code is not None else code, "message": e.message}
            for e in error.errors
        ]
    else:
        if isinstance(error, APIError):
            message = error.message
        elif isinstance(error, CfLlama2Error):
            message = str(error)
        else:
            message = "internal error"
        errors = [{"code": code, "message": message}]
    return status, {"result": None, "success": False, "errors": errors, "messages": []}


# ---------------------------------------------------------------------------------------------
# Answers (client side)


def _is_failure(body: Mapping[str, Any]) -> bool:
    return body.get("success") is False or ("result" in body and body["result"] is None)


def envelope_result(status: int, body: Any) -> Mapping[str, Any]:
    """The ``result`` object of a success envelope.

    Raises:
        APIError: the typed error for ``success: false`` / ``result: null`` answers
            (``BadResponseError`` unless the codes say otherwise), or a body of the wrong shape.
    """
    if not isinstance(body, Mapping):
        raise BadResponseError(
            f"Workers AI answered a JSON {type(body).__name__} where an envelope object "
            "{result, success, errors} was expected",
            status_code=status,
            body=body,
        )
    if _is_failure(body):
        raise error_from_response(status, body)
    result = body.get("result", body)
    if isinstance(result, str):
        return {"response": result}
    if not isinstance(result, Mapping):
        raise BadResponseError(
            f"Workers AI answered a result of type {type(result).__name__}; expected an object "
            "with 'response'",
            status_code=status,
            body=body,
        )
    return result
