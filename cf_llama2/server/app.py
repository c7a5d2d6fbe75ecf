"""The ASGI app: the Workers AI ``/ai/run`` endpoint (and the OpenAI routes) on local backends.

``POST /client/v4/accounts/{account_id}/ai/run/{model}`` (the model id keeps its slashes) checks,
in this order: shutdown (503, 3040 with ``Retry-After``), the bearer token (401, code 10000), the
model (400, 5007), the body size (413, 3006), the bytes in flight across connections (429, 3040),
the body deadline (408, 3007), the body itself (400, 5006, naming the field), then admission
(429, 3040 with ``Retry-After``). Decoding and validating the body (JSON, ``$ref`` expansion of
tool schemas) runs in a worker thread, so a heavy body never stalls other requests or
``/health``. An unexpected failure answers a generic message with a request id; the detail goes
to the log (with its traceback the first time each kind of failure happens).

Every body, envelope and SSE conversion goes through :mod:`cf_llama2.wire`, so the
server speaks exactly what :class:`~cf_llama2.backends.remote.RemoteBackend` reads.

Bodies may carry tool history in the Workers AI or the OpenAI shape; keys the server does not
read are ignored and listed in the envelope's ``messages``. A ``lora`` that was not registered
at start gets 400 (5007) before the backend sees the request. The OpenAI-compatible routes
(:mod:`cf_llama2.server.openai`) share the backends, token, queue and LoRA policy.

The ``cf-llama2-options`` request header carries what the Workers AI body has no field for
(``tool_choice``, ``response_format``, ``stop``); this server honours it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..backends.base import Backend
from ..errors import (
    APITimeoutError,
    CfLlama2Error,
    ConfigurationError,
    RateLimitError,
    WorkersAIErrorDetail,
)
from ..schema import Request
from ..wire import OPTIONS_HEADER, body_to_request, error_to_envelope, result_to_envelope
from .admitted import StartedStream, run_admitted
from .body_decode import check_wire_types, decode_json_body
from .connections import BodyBudget
from .failures import internal_error
from .lifecycle import ShutdownGate
from .lora import LoraPolicy
from .openai import OpenAIEndpoints, openai_not_found
from .queue import AdmissionQueue
from .registry import DEFAULT_SERVED_MODEL, ModelRegistry
from .request_io import TokenCheck, read_body
from .state import ServerState
from .streaming import ClientDisconnected, SSEResponse

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "DEFAULT_SERVED_MODEL",
    "OPTIONS_HEADER",
    "create_app",
]

logger = logging.getLogger("cf_llama2.server")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
RUN_PATH = "/client/v4/accounts/{account_id}/ai/run/{model:path}"


def error_response(error: BaseException) -> JSONResponse:
    """The Workers AI failure envelope for ``error``, with ``Retry-After`` on rate limits."""
    status, envelope = error_to_envelope(error)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return JSONResponse(envelope, status_code=status, headers=headers)


class _BodyLate(APITimeoutError):
    """The body did not arrive in time; the connection is closed after the 408."""


def _body_late(seconds: float) -> APITimeoutError:
    message = (
        f"Request timeout: the request body did not arrive within {seconds:g} s; send it at once "
        "(or start the server with a larger --body-timeout)"
    )
    return _BodyLate(
        message, status_code=408, errors=[WorkersAIErrorDetail(code=3007, message=message)]
    )


def _decode(raw: bytes, options_header: str | None) -> tuple[Request, list[str]]:
    """Everything CPU-bound about a body (runs in a worker thread); the request and its notes."""
    body = decode_json_body(raw)
    check_wire_types(body)
    notes: list[str] = []
    return body_to_request(body, options_header, notes=notes), notes


class _RunEndpoint:
    """Handles one ``/ai/run`` request; holds the server's shared state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def handle(self, http: HTTPRequest) -> Response:
        try:
            return await self._handle(http)
        except (ClientDisconnected, ClientDisconnect):
            logger.info("client disconnected before its answer; nothing more is done for it")
            return Response(status_code=499)
        except _BodyLate as error:
            response = error_response(error)
            response.headers["connection"] = "close"  # the rest of the body is not awaited
            return response
        except CfLlama2Error as error:
            return error_response(error)
        except Exception as error:
            return error_response(internal_error(self.state.failures.record(error)))

    async def _read_request(self, http: HTTPRequest) -> tuple[Request, list[str]]:
        try:
            with anyio.fail_after(self.state.body_timeout):
                raw = await read_body(
                    http.headers, http.stream(), limit=self.state.max_body, budget=self.state.budget
                )
        except TimeoutError:
            raise _body_late(self.state.body_timeout) from None
        try:
            return await anyio.to_thread.run_sync(_decode, raw, http.headers.get(OPTIONS_HEADER))
        finally:
            self.state.budget.give_back(len(raw))

    async def _handle(self, http: HTTPRequest) -> Response:
        if self.state.gate.closing:
            raise self.state.gate.error()
        self.state.tokens.check(http.headers)
        backend = self.state.registry.get(http.path_params["model"])
        request, notes = await self._read_request(http)
        self.state.lora.check(request.lora)
        for note in notes:
            logger.info("request to %s: %s", http.url.path, note)
        call = await run_admitted(
            http, request, backend, queue=self.state.queue, gate=self.state.gate
        )
        if not isinstance(call, StartedStream):
            return JSONResponse(result_to_envelope(call, notes))
        # From here on the response owns the iterator and the admission slot.
        return SSEResponse(
            call.head, call.events, call.cleanup, gate=self.state.gate, failures=self.state.failures
        )


async def _not_found(http: HTTPRequest, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    path = http.url.path
    if path.startswith("/v1/") or "/ai/v1/" in path:
        return openai_not_found(path, http.method, status)
    if status == 405:
        message = f"Method {http.method} not allowed on {http.url.path}; use POST"
        code = 7001
    else:
        message = (
            f"No route for {http.url.path}; POST to "
            "/client/v4/accounts/{account_id}/ai/run/{model}"
        )
        code = 7003
    envelope = {
        "result": None,
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
    }
    return JSONResponse(envelope, status_code=status)


def create_app(
    backends: Mapping[str, Backend] | Backend,
    *,
    api_token: str | None = None,
    max_queue: int = 32,
    max_concurrency: int = 8,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    retry_after: int = 1,
    close_backends: bool = False,
    lora_adapters: Collection[str] = (),
    max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    health_requires_token: bool = False,
) -> Starlette:
    """Build the Workers AI-compatible ASGI app.

    Args:
        backends: one backend (served as ``@cf/meta/llama-2-7b-chat-int8``) or a mapping of
            model names to backends (names may contain slashes).
        api_token: the bearer token clients must send; ``None`` accepts any request.
        max_queue: requests that may wait for a running slot; more get 429 (code 3040).
        max_concurrency: requests that run at the same time (a local backend decodes them
            together, up to its ``max_batch_size``).
        max_body_bytes: the largest request body accepted; larger gets 413 (code 3006).
        retry_after: seconds sent in ``Retry-After`` with a 429.
        close_backends: close the backends when the app shuts down (when the app owns them).
        lora_adapters: the adapter names a request's ``lora`` may name (registered with the
            backends at start); any other value gets 400 (code 5007) before the backend sees
            the request, so a client can never make the server read a path or the network.
        max_bytes_in_flight: request-body bytes held at once across all connections (from the
            first chunk until decoded); more get 429 (code 3040).
        body_timeout: seconds a client gets to send the whole body once its head arrived; a
            later body gets 408 (code 3007).
        health_requires_token: ``/health`` answers only with the bearer token (401 without it,
            revealing nothing); by default it is open, for load balancers.

    Returns:
        A Starlette app; serve it with uvicorn or :func:`cf_llama2.server.serve_in_thread`.

    Raises:
        ConfigurationError: a limit is out of range or a backend is not a backend.
    """
    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ConfigurationError(f"max_body_bytes must be an integer >= 1; got {max_body_bytes!r}")
    if not isinstance(body_timeout, (int, float)) or not body_timeout > 0:
        raise ConfigurationError(
            f"body_timeout must be a number of seconds > 0; got {body_timeout!r}"
        )
    registry = ModelRegistry(backends)
    queue = AdmissionQueue(
        max_concurrency=max_concurrency, max_queue=max_queue, retry_after=retry_after
    )
    tokens = TokenCheck(api_token)
    lora = LoraPolicy(lora_adapters)
    if health_requires_token and not tokens.enabled:
        raise ConfigurationError(
            "health_requires_token=True needs an api_token (there is nothing to require)"
        )
    gate = ShutdownGate(retry_after)
    budget = BodyBudget(max_bytes_in_flight, retry_after)
    state = ServerState(
        registry,
        tokens,
        queue,
        max_body_bytes,
        lora,
        budget=budget,
        body_timeout=float(body_timeout),
        gate=gate,
    )
    endpoint = _RunEndpoint(state)
    openai = OpenAIEndpoints(state)

    async def health(http: HTTPRequest) -> Response:
        if health_requires_token:
            try:
                tokens.check(http.headers)
            except CfLlama2Error as error:
                return error_response(error)
        if gate.closing:
            return JSONResponse({"status": "stopping"}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "models": registry.names,
                "lora_adapters": lora.names,
                "running": queue.running,
                "waiting": queue.waiting,
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if close_backends:
            for backend in registry.unique_backends():
                try:
                    await backend.aclose()
                except Exception:
                    logger.exception("closing backend %r failed", backend)

    app = Starlette(
        routes=[
            Route(RUN_PATH, endpoint.handle, methods=["POST"]),
            *openai.routes(),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.queue = queue
    app.state.gate = gate
    return app
