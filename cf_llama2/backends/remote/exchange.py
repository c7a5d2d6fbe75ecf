"""What the sync and async remote clients share: everything but the I/O call.

Pure steps: build a request (:func:`prepare`), turn an HTTP answer or a transport failure into a
typed error (:func:`response_error`, :func:`transport_error`), share one TLS context
(:func:`tls_context`), decode a non-streamed answer
(:func:`answer_events`) and a stream (:class:`StreamDecoder`), and decide about retries
(:func:`retry_delay`, which also logs).
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ...errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadResponseError,
    EndpointNotFoundError,
    IncompleteStreamError,
    error_from_response,
)
from ...schema import Request, StreamEvent
from ...tools import Tool
from ...wire import (
    OPTIONS_HEADER,
    WireStreamDecoder,
    envelope_to_events,
    request_options_header,
    request_to_body,
    sent_tools,
)
from .config import RemoteSettings
from .endpoint import Endpoint
from .redact import redact_error
from .retry import RetryPolicy, give_up_reason, parse_retry_after
from .sse import SSEDecoder

__all__ = [
    "PreparedCall",
    "StreamDecoder",
    "answer_events",
    "is_event_stream",
    "prepare",
    "response_error",
    "retry_delay",
    "tls_context",
    "transport_error",
    "wait_or_raise",
]

logger = logging.getLogger("cf_llama2.remote")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every client this module creates.

    Building one (loading the CA bundle) costs ~15 ms, more than a whole loopback request, and
    each async call opens its own client; sharing the context makes that client cheap.
    """
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class PreparedCall:
    """One HTTP call, ready to send (``repr`` leaves the headers out: they hold the token).

    ``target`` is the parsed ``url`` (parsed once per endpoint, not per call) and ``tools`` the
    tools sent (worked out once per call; ``None``: work them out from ``request``).
    """

    url: str
    content: bytes
    headers: Mapping[str, str]
    request: Request
    model: str
    stream: bool
    target: httpx.URL | None = None
    tools: tuple[Tool, ...] | None = None

    def __repr__(self) -> str:
        return f"PreparedCall(url={self.url!r}, stream={self.stream}, bytes={len(self.content)})"


def prepare(
    settings: RemoteSettings,
    request: Request,
    *,
    stream: bool,
    endpoint: Endpoint | None = None,
) -> PreparedCall:
    """The URL, body and headers for ``request``; ``stream`` overrides the request's flag.

    Args:
        settings: the backend's settings.
        request: a validated request (not validated again here).
        stream: ask for an SSE answer.
        endpoint: the URL and headers of ``settings`` built earlier (reused when it was built
            from this very settings object, else built now).

    Raises:
        ConfigurationError: credentials are missing (named with their environment variables).
    """
    if endpoint is None or endpoint.settings is not settings:
        endpoint = Endpoint.of(settings)
    if not endpoint.complete:
        missing = settings.missing_credentials()
        if missing is not None:
            raise missing
    tools = tuple(sent_tools(request))
    body = request_to_body(request, tool_format=settings.tool_format, tools=tools)
    body["stream"] = stream
    headers = endpoint.headers(stream=stream)
    options = request_options_header(request, tools=tools)
    if options is not None:
        headers[OPTIONS_HEADER] = options
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return PreparedCall(
        endpoint.url, content, headers, request, settings.model, stream, endpoint.target, tools
    )


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def response_error(status: int, headers: Mapping[str, str], content: bytes) -> APIError:
    """The typed error for an HTTP error answer (status >= 400)."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    body = _json_or_none(content)
    text = content.decode("utf-8", errors="replace") if body is None else ""
    error = error_from_response(status, body, retry_after=retry_after, text=text)
    if retry_after is not None and not hasattr(error, "retry_after"):
        error.retry_after = retry_after  # type: ignore[attr-defined]
    return error


def answer_events(call: PreparedCall, status: int, content: bytes) -> list[StreamEvent]:
    """The events of a complete JSON answer (HTTP 200 expected; errors raised)."""
    body = _json_or_none(content)
    if body is None:
        raise error_from_response(status, None, text=content.decode("utf-8", errors="replace"))
    return envelope_to_events(status, body, call.request, model=call.model, tools=call.tools)


def is_event_stream(headers: Mapping[str, str]) -> bool:
    """Whether the answer is an SSE stream (else a JSON envelope)."""
    return "text/event-stream" in headers.get("content-type", "").lower()


def transport_error(
    exc: httpx.HTTPError, *, after_events: bool = False, text: str = "", answered: bool = False
) -> APIError:
    """The typed error for an httpx failure.

    Args:
        exc: the httpx exception.
        after_events: events were already delivered: the answer is truncated.
        text: the text delivered so far (kept on the truncation error).
        answered: the response headers had arrived: the connection dropped mid-answer.
    """
    if after_events:
        return IncompleteStreamError(
            f"the stream broke before 'data: [DONE]' ({type(exc).__name__}); the answer is "
            "truncated. Retry the request.",
            partial_text=text,
        )
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(
            f"Workers AI timed out ({type(exc).__name__}); no HTTP answer came. Retry, or raise "
            "timeout=."
        )
        error.status_code = None  # the client gave up: there is no HTTP status
        return error
    if answered:
        return APIConnectionError(
            "the connection to Workers AI dropped in the middle of the answer "
            f"({type(exc).__name__}: {exc}); nothing usable arrived. Retry the request."
        )
    if isinstance(exc, (httpx.TransportError, httpx.StreamError)):
        return APIConnectionError(
            f"could not reach Workers AI ({type(exc).__name__}: {exc}). Check the network, "
            "base_url= and gateway=."
        )
    return APIConnectionError(f"HTTP failure talking to Workers AI ({type(exc).__name__}: {exc})")


def retry_delay(
    policy: RetryPolicy, retry: int, error: APIError, call: PreparedCall
) -> float | None:
    """The wait before retry ``retry`` (1-based), or ``None`` to raise ``error``; logs retries."""
    delay = policy.delay(retry, error, retry_after=getattr(error, "retry_after", None))
    if delay is not None:
        logger.warning(
            "Workers AI request failed with %s (HTTP %s, codes %s); retry %d of %d in %.2fs",
            type(error).__name__,
            error.status_code,
            error.codes,
            retry,
            policy.max_retries,
            delay,
        )
    return delay


def wait_or_raise(
    policy: RetryPolicy,
    retry: int,
    error: APIError,
    cause: BaseException,
    call: PreparedCall,
    secrets: list[str],
    *,
    delivered: bool = False,
) -> float:
    """The wait before retry ``retry``; raises ``error`` when it is not to be retried.

    A stream that already ``delivered`` events is never retried. The raised error says whether
    and how often it was retried, and carries none of ``secrets``.
    """
    delay = None if delivered else retry_delay(policy, retry, error, call)
    if delay is not None:
        return delay
    notes = [] if delivered else [give_up_reason(policy, retry, error)]
    if isinstance(error, EndpointNotFoundError):
        notes.append(f"(POST {call.url})")
    note = " ".join(n for n in notes if n)
    if note:
        error.message = f"{error.message} {note}"
        error.args = (error.message, *error.args[1:])
    redact_error(error, secrets)
    if cause is not error:
        raise error from cause
    raise error


class StreamDecoder:
    """Bytes of an SSE answer in, stream events out; knows when the answer is complete.

    ``done`` turns true at ``data: [DONE]`` or when a stop sequence ended the text (the caller
    then stops reading). :meth:`end` gives the closing events, or raises
    :class:`IncompleteStreamError` when the stream closed before ``[DONE]``.
    """

    def __init__(self, call: PreparedCall) -> None:
        self._sse = SSEDecoder()
        self._wire = WireStreamDecoder(call.request, model=call.model, tools=call.tools)
        self.done = False
        self.delivered = False

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return self._wire.text

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by ``chunk``."""
        events: list[StreamEvent] = []
        if self.done:
            return events
        for sse in self._sse.feed(chunk):
            data = sse.data.strip()
            if data == "[DONE]":
                self.done = True
                break
            payload = _json_or_none(data.encode())
            if sse.event == "error":
                body = payload if isinstance(payload, Mapping) else None
                raise error_from_response(None, body, text=data)
            if payload is None:
                raise BadResponseError(f"a Workers AI stream event is not JSON: {data[:200]!r}")
            events += self._wire.feed(payload)
            if self._wire.stopped:
                self.done = True
                break
        if events:
            self.delivered = True
        return events

    def end(self) -> list[StreamEvent]:
        """The closing events once the body ended.

        Raises:
            IncompleteStreamError: the stream closed before ``data: [DONE]``.
        """
        if not self.done:
            raise IncompleteStreamError(
                "the Workers AI stream closed before 'data: [DONE]'; the answer is truncated. "
                "Retry the request.",
                partial_text=self._wire.text,
            )
        return self._wire.finish()
