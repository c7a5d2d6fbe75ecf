"""The remote backend: ``@cf/meta/llama-2-7b-chat-int8`` (or any model id) on Workers AI.

Sync (``httpx.Client``) and async (``httpx.AsyncClient``) paths share every step but the I/O
call (see :mod:`.exchange`). Options the wire has no field for are emulated here:
``tool_choice="none"`` sends no tools, a named tool sends only that tool with an instruction in
the system prompt, ``response_format`` becomes an instruction, and stop sequences cut the text
client-side. They also travel in the ``cf-llama2-options`` header, which the local server
honours and Cloudflare ignores.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from ...errors import APIError
from ...schema import ChatResult, Request, StreamEvent, parse_request
from ..base import BackendInfo
from .attempt import (
    FAILURES,
    aread_all,
    build_request,
    events_of,
    failure,
    read_all,
    result_of,
)
from .config import DEFAULT_MODEL, RemoteSettings
from .deadline import Deadline
from .endpoint import BakedAsyncClient, BakedClient, Endpoint
from .exchange import (
    PreparedCall,
    StreamDecoder,
    is_event_stream,
    prepare,
    tls_context,
    wait_or_raise,
)
from .pools import LoopClients
from .retry import RetryPolicy
from .socket_deadline import async_deadline_transport, deadline_transport

__all__ = ["RemoteBackend"]


class RemoteBackend:
    """Workers AI over HTTPS (or any server speaking its format, such as the local server).

    Args:
        account_id: the Cloudflare account id; default ``CLOUDFLARE_ACCOUNT_ID`` or
            ``CF_ACCOUNT_ID``.
        api_token: the API token; default ``CLOUDFLARE_API_TOKEN`` or ``CF_AI_API_TOKEN``.
            Missing credentials raise :class:`~cf_llama2.errors.ConfigurationError` at the first
            request, so objects can be built before the environment is set.
        model: the Workers AI model id (it keeps its slashes in the URL).
        base_url: the API root, e.g. ``http://127.0.0.1:8787/client/v4``; with ``gateway`` the
            gateway root (default ``https://gateway.ai.cloudflare.com/v1``).
        gateway: an AI Gateway id: requests go to ``{root}/{account}/{gateway}/workers-ai/{model}``.
        timeout: the deadline of one attempt, in seconds: connecting, sending and receiving
            the whole answer; for a stream, the wait for the first event and then for each
            next one (time your code spends between events does not count). A server that
            trickles bytes cannot stretch it. Each retry gets a new deadline.
        max_retries: retries on 408/429/5xx/connection errors, with jittered exponential
            backoff that honours ``Retry-After`` (plus a random spread, so that many clients
            told to wait do not return at the same instant); streams retry only before their
            first event.
        tool_format: the form tools are sent in: ``"function"`` or ``"flat"``.
        http_client: an ``httpx.Client`` to use (not closed by :meth:`close`).
        async_http_client: an ``httpx.AsyncClient`` to use (not closed by :meth:`aclose`).
        transport: an httpx transport for the client this backend creates.
        async_transport: an httpx async transport for the async clients this backend creates
            (the transport itself is left open). The backend keeps one pooled async client per
            event loop, closed when the loop shuts down or by :meth:`aclose`/:meth:`close`.
        headers: extra headers for every request (``cf-aig-*`` gateway options, ...).
        retry_policy: the backoff timings (its ``max_retries`` is replaced by ``max_retries``).

    Raises:
        ConfigurationError: a malformed option (bad URL, negative timeout, ...).

    The token is never part of ``repr``, error messages, logs or pickles: an unpickled backend
    reads its token from the environment again.
    """

    provider = "workers-ai"
    """The provider name (also ``info.provider``), known without loading anything."""

    def __init__(
        self,
        account_id: str | None = None,
        api_token: str | SecretStr | None = None,
        *,
        model: str | None = DEFAULT_MODEL,
        base_url: str | None = None,
        gateway: str | None = None,
        timeout: float | None = 60.0,
        max_retries: int | None = 2,
        tool_format: Literal["function", "flat"] | None = "function",
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = RemoteSettings.resolve(
            account_id,
            api_token,
            model=model,
            base_url=base_url,
            gateway=gateway,
            timeout=timeout,
            max_retries=max_retries,
            tool_format=tool_format,
            headers=dict(headers) if headers else None,
        )
        self.retry_policy = dataclasses.replace(
            retry_policy or RetryPolicy(), max_retries=self.settings.max_retries
        )
        self._client = http_client
        self._aclient = async_http_client
        self._owns_client = http_client is None
        self._transport = transport
        self._async_transport = async_transport
        self._lock = threading.Lock()
        self._aclients = self._loop_clients()
        self._endpoint: Endpoint | None = None
        self._info: BackendInfo | None = None

    # -- facts and lifecycle ------------------------------------------------------------------

    @property
    def info(self) -> BackendInfo:
        """The model id, its 4096-token window, no constrained decoding, ``workers-ai``."""
        info = self._info
        if info is None or info.model != self.settings.model:
            info = self._info = BackendInfo(
                model=self.settings.model,
                context_window=4096,
                provider="workers-ai",
            )
        return info

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"RemoteBackend(model={s.model!r}, account_id={s.account_id!r}, "
            f"url={s.url!r}, api_token={'**********' if s.api_token else None})"
        )

    def __getstate__(self) -> dict[str, Any]:
        # Pickles carry no secret and no live client: the token is read from the env again.
        settings = self.settings.model_copy(update={"api_token": None})
        return {"settings": settings, "retry_policy": self.retry_policy}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self.retry_policy = state["retry_policy"]
        self._client = self._aclient = None
        self._owns_client = True
        self._transport = self._async_transport = None
        self._lock = threading.Lock()
        self._aclients = self._loop_clients()
        self._endpoint = None
        self._info = None

    def __copy__(self) -> RemoteBackend:
        # A copy keeps the token, shares clients passed in, and makes its own clients otherwise
        # (closing one copy never closes the other's).
        clone = object.__new__(RemoteBackend)
        clone.__dict__.update(self.__dict__)
        clone._lock = threading.Lock()
        clone._aclients = clone._loop_clients()
        if self._owns_client:
            clone._client = None
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> RemoteBackend:
        clone = copy.copy(self)
        memo[id(self)] = clone
        return clone

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                transport = self._transport or deadline_transport(tls_context())
                self._client = BakedClient(
                    baked=self._baked_headers(), transport=transport, verify=tls_context()
                )
            return self._client

    def _baked_headers(self) -> Mapping[str, str]:
        """The default headers of a client made now: the JSON call's, once an endpoint exists."""
        endpoint = self._endpoint
        return endpoint.json_headers if endpoint is not None else {}

    def _loop_clients(self) -> LoopClients:
        transport = self._async_transport
        backend = weakref.ref(self)  # the pools must not keep the backend alive

        def factory() -> httpx.AsyncClient:
            chosen = transport or async_deadline_transport(tls_context())
            owner = backend()
            baked = owner._baked_headers() if owner is not None else {}
            return BakedAsyncClient(baked=baked, transport=chosen, verify=tls_context())

        return LoopClients(factory, owned=transport is None)

    async def _async_client(self) -> httpx.AsyncClient:
        # A client passed in is used as is; else one pooled client per running event loop.
        if self._aclient is not None:
            return self._aclient
        return await self._aclients.get()

    def _settings(self) -> RemoteSettings:
        settings = self.settings.with_env_credentials()
        if settings is not self.settings:
            self.settings = settings
        return settings

    def _prepare(self, request: Request | Mapping[str, Any], *, stream: bool) -> PreparedCall:
        settings = self._settings()
        endpoint = self._endpoint
        if endpoint is None or endpoint.settings is not settings:
            endpoint = self._endpoint = Endpoint.of(settings)  # once per settings object
        return prepare(settings, parse_request(request), stream=stream, endpoint=endpoint)

    def _secrets(self) -> list[str]:
        token = self.settings.api_token
        return [
            *([token.get_secret_value()] if token is not None else []),
            *self.settings.headers.values(),
        ]

    def close(self) -> None:
        """Close the HTTP clients this backend created (a client passed in stays open).

        Async pools are closed too: on a loop running in another thread by a task scheduled
        there, on a closed loop by shutting their sockets. The backend stays usable: a later
        request opens a new client.
        """
        self._aclients.close()
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the clients this backend created, the running loop's pool before returning."""
        await self._aclients.aclose()
        self.close()

    def __enter__(self) -> RemoteBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RemoteBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _wait_or_raise(
        self,
        retry: int,
        error: APIError,
        cause: BaseException,
        call: PreparedCall,
        sent: bool = False,
    ) -> float:
        """:func:`.exchange.wait_or_raise` with this backend's policy and secrets."""
        policy, secrets = self.retry_policy, self._secrets()
        return wait_or_raise(policy, retry, error, cause, call, secrets, delivered=sent)

    # -- sync -------------------------------------------------------------------------------

    def run(self, request: Request | Mapping[str, Any]) -> ChatResult:
        """Answer ``request`` in one piece (one POST, retried on transient failures)."""
        call = self._prepare(request, stream=False)
        client = self._sync_client()
        retry = 0
        while True:
            deadline = Deadline(self.settings.timeout)
            try:
                response = client.send(build_request(client, call, deadline), stream=True)
                try:
                    deadline.answered = True
                    content = read_all(response.iter_bytes(), deadline)
                finally:
                    response.close()
                return result_of(call, response, content)
            except FAILURES as exc:
                error, cause = failure(exc, deadline), exc
            retry += 1
            time.sleep(self._wait_or_raise(retry, error, cause, call))

    def stream(self, request: Request | Mapping[str, Any]) -> Iterator[StreamEvent]:
        """Answer ``request`` as events, delivered as they arrive."""
        call = self._prepare(request, stream=True)
        client = self._sync_client()
        retry = 0
        while True:
            decoder = StreamDecoder(call)
            deadline = Deadline(self.settings.timeout)
            try:
                response = client.send(build_request(client, call, deadline), stream=True)
                try:
                    deadline.answered = True
                    if response.status_code >= 400 or not is_event_stream(response.headers):
                        content = read_all(response.iter_bytes(), deadline)
                        yield from events_of(call, response, content)
                        return
                    for chunk in response.iter_bytes():
                        events = decoder.feed(chunk)
                        if events:
                            yield from events
                            deadline.next_event()
                        elif not decoder.done:
                            deadline.check()
                        if decoder.done:
                            break
                    yield from decoder.end()
                    return
                finally:
                    response.close()
            except FAILURES as exc:
                error, cause = failure(exc, deadline, decoder), exc
            retry += 1
            time.sleep(self._wait_or_raise(retry, error, cause, call, decoder.delivered))

    # -- async ------------------------------------------------------------------------------

    async def arun(self, request: Request | Mapping[str, Any]) -> ChatResult:
        """Async :meth:`run`."""
        call = self._prepare(request, stream=False)
        client = await self._async_client()
        retry = 0
        while True:
            deadline = Deadline(self.settings.timeout)
            try:
                response = await client.send(build_request(client, call, deadline), stream=True)
                try:
                    deadline.answered = True
                    content = await aread_all(response.aiter_bytes(), deadline)
                finally:
                    await response.aclose()
                return result_of(call, response, content)
            except FAILURES as exc:
                error, cause = failure(exc, deadline), exc
            retry += 1
            await asyncio.sleep(self._wait_or_raise(retry, error, cause, call))

    async def astream(self, request: Request | Mapping[str, Any]) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`."""
        call = self._prepare(request, stream=True)
        client = await self._async_client()
        retry = 0
        while True:
            decoder = StreamDecoder(call)
            deadline = Deadline(self.settings.timeout)
            try:
                response = await client.send(build_request(client, call, deadline), stream=True)
                try:
                    deadline.answered = True
                    if response.status_code >= 400 or not is_event_stream(response.headers):
                        content = await aread_all(response.aiter_bytes(), deadline)
                        for event in events_of(call, response, content):
                            yield event
                        return
                    async for chunk in response.aiter_bytes():
                        events = decoder.feed(chunk)
                        for event in events:
                            yield event
                        if events:
                            deadline.next_event()
                        elif not decoder.done:
                            deadline.check()
                        if decoder.done:
                            break
                    for event in decoder.end():
                        yield event
                    return
                finally:
                    await response.aclose()
            except FAILURES as exc:
                error, cause = failure(exc, deadline, decoder), exc
            retry += 1
            await asyncio.sleep(self._wait_or_raise(retry, error, cause, call, decoder.delivered))
