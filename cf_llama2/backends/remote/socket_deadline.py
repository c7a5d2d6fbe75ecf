"""Transports that hold every socket operation to the attempt's deadline, sync and async.

httpx gives each socket read the same timeout, so a server that trickles its status line and
headers a byte at a time never trips it. The clients the backend creates use these transports:
their network streams cap each read, write and connect at the time left to the attempt. The
deadline travels with the request as a :class:`DeadlineSeconds`: a float (so httpx and httpcore
pass it through unchanged) that reads the deadline live, since a stream's deadline moves on with
each event. This costs a subtraction per socket operation, where a cancel scope around each
attempt would cost tens of microseconds.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import Any, Protocol

import httpcore
import httpx

__all__ = ["DeadlineSeconds", "async_deadline_transport", "deadline_transport"]


class _Clock(Protocol):
    @property
    def at(self) -> float: ...


class DeadlineSeconds(float):
    """A timeout in seconds that also knows its attempt's deadline (which a stream moves)."""

    clock: _Clock

    def __new__(cls, seconds: float, clock: _Clock) -> DeadlineSeconds:
        value = super().__new__(cls, seconds)
        value.clock = clock
        return value


def _cap(timeout: float | None, error: type[Exception]) -> float | None:
    if not isinstance(timeout, DeadlineSeconds):
        return timeout
    left = timeout.clock.at - time.monotonic()
    if left <= 0:
        raise error("the attempt's deadline passed")
    return min(float(timeout), left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _cap(timeout, httpcore.ConnectTimeout)
        )
        return _Stream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _cap(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _cap(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(ssl_context: ssl.SSLContext) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` (httpx's default limits) whose sockets honour deadlines."""
    transport = httpx.HTTPTransport(verify=ssl_context)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    # httpx has no argument for a network backend; its pool is swapped for one that has it.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=5.0,
        network_backend=_Backend(),
    )
    return transport


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._inner.start_tls(
            ssl_context, server_hostname, _cap(timeout, httpcore.ConnectTimeout)
        )
        return _AsyncStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _cap(timeout, httpcore.ConnectTimeout)
        inner = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncStream(inner)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _cap(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def async_deadline_transport(ssl_context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """The async twin of :func:`deadline_transport`."""
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=_AsyncBackend(),
    )
    return transport
