"""Unexpected failures: a generic answer with a request id, the detail in the log once.

A client never sees internal exception text (paths, library internals). Each failure gets a
request id that appears in both the answer and the log line; the traceback is logged the first
time each kind of failure (exception type and the line that raised it) happens, and later ones
log one line that points back to it.
"""

from __future__ import annotations

import logging
import uuid

from ..errors import ServerError, WorkersAIErrorDetail

__all__ = ["FailureLog", "internal_error"]

logger = logging.getLogger("cf_llama2.server")


def internal_error(request_id: str) -> ServerError:
    """The 500 (code 3043) a client gets for an unexpected failure."""
    message = (
        f"Internal error: the server failed while answering (request id {request_id}); the "
        "server's log has the detail"
    )
    return ServerError(
        message, status_code=500, errors=[WorkersAIErrorDetail(code=3043, message=message)]
    )


class FailureLog:
    """Logs unexpected failures, each traceback once per kind and place."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, int]] = set()

    def record(self, error: BaseException) -> str:
        """Log ``error``; return the request id to give the client."""
        request_id = uuid.uuid4().hex[:16]
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        site = (
            type(error).__qualname__,
            tb.tb_frame.f_code.co_filename if tb else "",
            tb.tb_lineno if tb else 0,
        )
        if site in self._seen:
            logger.error(
                "request %s failed: %s: %s (traceback logged before)",
                request_id,
                type(error).__name__,
                error,
            )
        else:
            self._seen.add(site)
            logger.error("request %s failed", request_id, exc_info=error)
        return request_id
