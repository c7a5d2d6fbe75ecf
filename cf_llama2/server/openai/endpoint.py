"""The OpenAI-compatible routes: chat completions, models and (refused) embeddings.

Mounted under ``/client/v4/accounts/{account_id}/ai/v1/`` (the Workers AI paths) and under
``/v1/`` (for tools that take only a host). The same backends, bearer token, admission queue,
disconnect handling and LoRA policy as the ``/ai/run`` route serve them; only the shapes differ.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...errors import APITimeoutError, CfLlama2Error, ModelNotFoundError, RateLimitError
from ..admitted import StartedStream, run_admitted
from ..request_io import parse_json_body, read_body
from ..state import ServerState
from ..streaming import ClientDisconnected, SSEResponse
from .errors import error_body, openai_error
from .request import OpenAIChatRequest, openai_body_to_request
from .response import ChunkEncoder, result_to_completion

__all__ = ["OPENAI_PREFIXES", "OpenAIEndpoints", "openai_not_found"]

logger = logging.getLogger("cf_llama2.server")

OPENAI_PREFIXES = ("/client/v4/accounts/{account_id}/ai/v1", "/v1")
"""Where the OpenAI-compatible routes are mounted."""


def _json_error(status: int, body: dict[str, Any], error: BaseException | None = None) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return JSONResponse(body, status_code=status, headers=headers)


def _error_response(error: BaseException) -> Response:
    status, body = error_body(error)
    return _json_error(status, body, error)


def openai_not_found(path: str, method: str, status: int) -> Response:
    """An OpenAI-shaped 404/405 for a path under one of the OpenAI prefixes."""
    if status == 405:
        message = f"Method {method} not allowed on {path}"
    else:
        message = (
            f"No route for {path}; this server offers chat/completions and models under "
            "/v1/ and /client/v4/accounts/{account_id}/ai/v1/"
        )
    return _json_error(*openai_error(message, status=status, kind="invalid_request_error"))


class OpenAIEndpoints:
    """The OpenAI-compatible handlers; they share the server's state with ``/ai/run``."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The routes under every prefix of :data:`OPENAI_PREFIXES`."""
        out: list[Route] = []
        for prefix in OPENAI_PREFIXES:
            out.append(Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]))
            out.append(Route(f"{prefix}/models", self.models, methods=["GET"]))
            out.append(Route(f"{prefix}/embeddings", self.embeddings, methods=["POST"]))
        return out

    async def models(self, http: HTTPRequest) -> Response:
        """``GET .../models``: the served model names."""
        try:
            self.state.tokens.check(http.headers)
        except CfLlama2Error as error:
            return _error_response(error)
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "cf-llama2"}
            for name in self.state.registry.names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def embeddings(self, http: HTTPRequest) -> Response:
        """``POST .../embeddings``: refused; this server serves chat models only."""
        try:
            self.state.tokens.check(http.headers)
        except CfLlama2Error as error:
            return _error_response(error)
        message = (
            "This server has no embedding model: it serves chat models only "
            f"({', '.join(self.state.registry.names)}). Use an embedding service for embeddings."
        )
        return _json_error(
            *openai_error(message, status=404, kind="invalid_request_error", code="model_not_found")
        )

    async def chat(self, http: HTTPRequest) -> Response:
        """``POST .../chat/completions``."""
        try:
            return await self._chat(http)
        except (ClientDisconnected, ClientDisconnect):
            logger.info("client disconnected before its answer; nothing more is done for it")
            return Response(status_code=499)
        except CfLlama2Error as error:
            return _error_response(error)
        except Exception as error:
            request_id = self.state.failures.record(error)
            return _json_error(
                *openai_error(
                    f"Internal error: the server failed (request id {request_id}); see the "
                    "server log",
                    status=500,
                    kind="server_error",
                )
            )

    async def _read(self, http: HTTPRequest) -> OpenAIChatRequest:
        # The same bounds as /ai/run: body deadline, bytes in flight, decoding off the loop.
        try:
            with anyio.fail_after(self.state.body_timeout):
                raw = await read_body(
                    http.headers, http.stream(), limit=self.state.max_body, budget=self.state.budget
                )
        except TimeoutError:
            message = f"the request body did not arrive within {self.state.body_timeout:g} s"
            raise APITimeoutError(message, status_code=408) from None
        try:
            return await anyio.to_thread.run_sync(
                lambda: openai_body_to_request(parse_json_body(raw))
            )
        finally:
            self.state.budget.give_back(len(raw))

    async def _chat(self, http: HTTPRequest) -> Response:
        gate = self.state.gate
        if gate.closing:
            raise gate.error()
        self.state.tokens.check(http.headers)
        read = await self._read(http)
        backend = self.state.registry.get(read.model)
        try:
            self.state.lora.check(read.request.lora)
        except ModelNotFoundError as error:
            status, body = openai_error(
                str(error.errors[0].message if error.errors else error),
                status=400,
                kind="invalid_request_error",
                code="invalid_value",
                param="lora",
            )
            return _json_error(status, body)
        for note in read.notes:
            logger.info("request to %s: %s", http.url.path, note)
        request = read.request
        call = await run_admitted(http, request, backend, queue=self.state.queue, gate=gate)
        if not isinstance(call, StartedStream):
            return JSONResponse(result_to_completion(call, model=read.model))
        encoder = ChunkEncoder(read.model, include_usage=read.include_usage)
        return SSEResponse(
            call.head, call.events, call.cleanup, encoder, gate=gate, failures=self.state.failures
        )
