"""One pooled ``httpx.AsyncClient`` per event loop, closed with the loop or the backend.

An async connection pool belongs to the event loop it was opened on. :class:`LoopClients` keeps
one client per running loop (weakly keyed by the loop object, so a new loop that happens to get
the old one's id never finds a stale pool), so consecutive calls on one loop reuse their
connections. A pool never outlives its loop's normal shutdown: each pool registers an async
generator with its loop, and ``loop.shutdown_asyncgens()`` (which ``asyncio.run``,
``asyncio.Runner``, pytest-asyncio and anyio call before closing a loop) closes the client.
A loop closed without that step leaves its pool behind; the next call, :meth:`close` or
:meth:`aclose` finds it, closes its sockets (the loop can no longer do it) and drops it, without
raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["LoopClients"]


@dataclass
class _Pool:
    client: httpx.AsyncClient
    keeper: AsyncGenerator[None, None] | None = None
    abandoned: bool = False


def _close_sockets(client: httpx.AsyncClient) -> None:
    """Close the sockets of a pool whose loop is closed (best effort, never raises).

    The loop can no longer close its transports, so their sockets are shut down and closed
    here (the file descriptors are released now; asyncio's transport objects may still warn
    ``unclosed transport`` when collected, as for any transport of a loop closed this way).
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    for connection in list(getattr(pool, "connections", ())):
        stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
        with contextlib.suppress(Exception):
            sock = stream.get_extra_info("socket") if stream is not None else None
            sock = getattr(sock, "_sock", sock)  # asyncio wraps it in a TransportSocket
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


class LoopClients:
    """Async clients made by ``factory``, one per event loop.

    Args:
        factory: makes a new client (called on the loop that will use it).
        owned: close the clients when done (``False`` when they wrap a transport passed in,
            which stays open).
    """

    def __init__(self, factory: Callable[[], httpx.AsyncClient], *, owned: bool = True) -> None:
        self._factory = factory
        self._owned = owned
        self._lock = threading.Lock()
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._pools)

    async def get(self) -> httpx.AsyncClient:
        """The client of the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool.client
        self._drop_dead()
        pool = _Pool(self._factory())
        pool.keeper = self._keeper(loop, pool)
        await pool.keeper.asend(None)  # registers it with the loop's async-generator shutdown
        with self._lock:
            self._pools[loop] = pool
        return pool.client

    async def _keeper(
        self, loop: asyncio.AbstractEventLoop, pool: _Pool
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._pools.get(loop) is pool:
                    del self._pools[loop]
            if self._owned and not pool.abandoned:
                await pool.client.aclose()

    def _take(self, keep: Callable[[asyncio.AbstractEventLoop], bool]) -> list[Any]:
        with self._lock:
            taken = [(loop, pool) for loop, pool in self._pools.items() if not keep(loop)]
            for loop, _ in taken:
                del self._pools[loop]
        return taken

    def _drop_dead(self) -> None:
        for _, pool in self._take(lambda loop: not loop.is_closed()):
            self._abandon(pool)

    def _abandon(self, pool: _Pool) -> None:
        # The loop is closed: nothing can be awaited on it. Shut the sockets, then finish the
        # keeper by hand (it awaits nothing once abandoned), so that the garbage collector does
        # not ask the closed loop to finish it.
        pool.abandoned = True
        if self._owned:
            _close_sockets(pool.client)
        if pool.keeper is not None:
            closing = pool.keeper.aclose()
            with contextlib.suppress(StopIteration, RuntimeError):
                closing.send(None)
            closing.close()

    def close(self) -> None:
        """Close every pool from synchronous code.

        A pool on a running loop is closed by a task scheduled on that loop; one on an idle loop
        is closed by running that loop briefly (when this thread runs no loop); one on a closed
        loop has its sockets shut down.
        """
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, pool in self._take(lambda loop: False):
            self._close_elsewhere(loop, pool, current)

    async def aclose(self) -> None:
        """Close every pool; the running loop's is closed before this returns."""
        current = asyncio.get_running_loop()
        for loop, pool in self._take(lambda loop: False):
            if loop is current and pool.keeper is not None:
                await pool.keeper.aclose()
            else:
                self._close_elsewhere(loop, pool, current)

    def _close_elsewhere(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: _Pool,
        current: asyncio.AbstractEventLoop | None,
    ) -> None:
        if pool.keeper is None:
            return
        if loop.is_closed():
            self._abandon(pool)
        elif loop.is_running():
            if loop is current:
                task = loop.create_task(pool.keeper.aclose())
                _pending.add(task)
                task.add_done_callback(_pending.discard)
            else:
                asyncio.run_coroutine_threadsafe(pool.keeper.aclose(), loop)
        elif current is None:
            loop.run_until_complete(pool.keeper.aclose())
        else:
            self._abandon(pool)


_pending: set[asyncio.Task[Any]] = set()  # close tasks in flight (a task needs a strong ref)
