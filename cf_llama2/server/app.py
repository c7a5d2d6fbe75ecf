"""The ASGI app: the Workers AI ``/ai/run`` endpoint (and the OpenAI routes) on local backends.

``POST /client/v4/accounts/{account_id}/ai/run/{model}`` (the model id keeps its slashes) checks,
in this order: the bearer token (401, code 10000), the model (400, 5007), the body size (413,
3006), the body itself (400, 5006, naming the field), then admission (429, 3040 with
``Retry-After``). Every body, envelope and SSE conversion goes through :mod:`cf_llama2.wire`, so the
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
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..backends.base import Backend
from ..errors import (
    CfLlama2Error,
    ConfigurationError,
    RateLimitError,
    ServerError,
    WorkersAIErrorDetail,
)
from ..wire import OPTIONS_HEADER, body_to_request, error_to_envelope, result_to_envelope
from .lora import LoraPolicy
from .openai import OpenAIEndpoints, openai_not_found
from .queue import AdmissionQueue
from .registry import DEFAULT_SERVED_MODEL, ModelRegistry
from .request_io import TokenCheck, parse_json_body, read_body
from .streaming import ClientDisconnected, SSEResponse, cancel_on_disconnect, first_events

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_SERVED_MODEL", "OPTIONS_HEADER", "create_app"]

logger = logging.getLogger("cf_llama2.server")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
RUN_PATH = "/client/v4/accounts/{account_id}/ai/run/{model:path}"


def error_response(error: BaseException) -> JSONResponse:
    """The Workers AI failure envelope for ``error``, with ``Retry-After`` on rate limits."""
    status, envelope = error_to_envelope(error)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return JSONResponse(envelope, status_code=status, headers=headers)


def _internal(error: BaseException) -> ServerError:
    message = f"Internal error: the backend raised {type(error).__name__}: {error}"
    return ServerError(
        message, status_code=500, errors=[WorkersAIErrorDetail(code=3043, message=message)]
    )


class _RunEndpoint:
    """Handles one ``/ai/run`` request; holds the server's shared state."""

    def __init__(
        self,
        registry: ModelRegistry,
        tokens: TokenCheck,
        queue: AdmissionQueue,
        max_body: int,
        lora: LoraPolicy,
    ) -> None:
        self.registry = registry
        self.tokens = tokens
        self.queue = queue
        self.max_body = max_body
        self.lora = lora

    async def handle(self, http: HTTPRequest) -> Response:
        try:
            return await self._handle(http)
        except ClientDisconnected:
            logger.info("client disconnected before its answer; generation cancelled")
            return Response(status_code=499)
        except CfLlama2Error as error:
            return error_response(error)
        except Exception as error:
            logger.exception("unexpected error while answering a request")
            return error_response(_internal(error))

    async def _handle(self, http: HTTPRequest) -> Response:
        self.tokens.check(http.headers)
        backend = self.registry.get(http.path_params["model"])
        raw = await read_body(http.headers, http.stream(), limit=self.max_body)
        notes: list[str] = []
        request = body_to_request(
            parse_json_body(raw), http.headers.get(OPTIONS_HEADER), notes=notes
        )
        self.lora.check(request.lora)
        for note in notes:
            logger.info("request to %s: %s", http.url.path, note)
        cleanup = AsyncExitStack()
        try:
            # Waiting for a slot counts as in flight too: a client that leaves the queue is
            # dropped from it instead of starting a generation nobody reads.
            await cancel_on_disconnect(
                http.receive, lambda: cleanup.enter_async_context(self.queue.slot())
            )
            if not request.stream:
                result = await cancel_on_disconnect(http.receive, lambda: backend.arun(request))
                await cleanup.aclose()
                return JSONResponse(result_to_envelope(result, notes))
            events = backend.astream(request)
            try:
                head = await cancel_on_disconnect(http.receive, lambda: first_events(events))
            except BaseException:
                await _aclose(events)
                raise
        except BaseException:
            await cleanup.aclose()
            raise
        # From here on the response owns the iterator and the admission slot.
        return SSEResponse(head, events, cleanup)


async def _aclose(events: Any) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


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
    max_concurrency: int = 4,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    retry_after: int = 1,
    close_backends: bool = False,
    lora_adapters: Collection[str] = (),
) -> Starlette:
    """Build the Workers AI-compatible ASGI app.

    Args:
        backends: one backend (served as ``@cf/meta/llama-2-7b-chat-int8``) or a mapping of
            model names to backends (names may contain slashes).
        api_token: the bearer token clients must send; ``None`` accepts any request.
        max_queue: requests that may wait for a running slot; more get 429 (code 3040).
        max_concurrency: requests that run at the same time.
        max_body_bytes: the largest request body accepted; larger gets 413 (code 3006).
        retry_after: seconds sent in ``Retry-After`` with a 429.
        close_backends: close the backends when the app shuts down (when the app owns them).
        lora_adapters: the adapter names a request's ``lora`` may name (registered with the
            backends at start); any other value gets 400 (code 5007) before the backend sees
            the request, so a client can never make the server read a path or the network.

    Returns:
        A Starlette app; serve it with uvicorn or :func:`cf_llama2.server.serve_in_thread`.

    Raises:
        ConfigurationError: a limit is out of range or a backend is not a backend.
    """
    if not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ConfigurationError(f"max_body_bytes must be an integer >= 1; got {max_body_bytes!r}")
    registry = ModelRegistry(backends)
    queue = AdmissionQueue(
        max_concurrency=max_concurrency, max_queue=max_queue, retry_after=retry_after
    )
    tokens = TokenCheck(api_token)
    lora = LoraPolicy(lora_adapters)
    endpoint = _RunEndpoint(registry, tokens, queue, max_body_bytes, lora)
    openai = OpenAIEndpoints(registry, tokens, queue, max_body_bytes, lora)

    async def health(http: HTTPRequest) -> Response:
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
    return app
