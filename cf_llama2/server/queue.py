"""Bounded admission: at most ``max_concurrency`` requests run, at most ``max_queue`` wait.

A request that finds both full is refused at once with :class:`~cf_llama2.errors.RateLimitError`
(HTTP 429, Workers AI code 3040 "capacity temporarily exceeded") carrying ``retry_after``, which the
server sends as the ``Retry-After`` header. Nothing waits unboundedly and nothing is dropped
silently: a request is either admitted (and answered) or refused with that error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..errors import ConfigurationError, RateLimitError, WorkersAIErrorDetail

__all__ = ["AdmissionQueue"]


class AdmissionQueue:
    """Admission control for one server process.

    Args:
        max_concurrency: requests that may run at the same time (at least 1).
        max_queue: requests that may wait for a running slot (0 refuses anything that would wait).
        retry_after: seconds a refused client is told to wait (the ``Retry-After`` header).

    Raises:
        ConfigurationError: a limit is out of range.
    """

    def __init__(
        self, *, max_concurrency: int = 8, max_queue: int = 32, retry_after: int = 1
    ) -> None:
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigurationError(
                f"max_concurrency must be an integer >= 1; got {max_concurrency!r}"
            )
        if not isinstance(max_queue, int) or max_queue < 0:
            raise ConfigurationError(f"max_queue must be an integer >= 0; got {max_queue!r}")
        if not isinstance(retry_after, int) or retry_after < 1:
            raise ConfigurationError(f"retry_after must be an integer >= 1; got {retry_after!r}")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.retry_after = retry_after
        self._running = 0
        self._waiting = 0
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def running(self) -> int:
        """Requests holding a running slot now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Requests waiting for a running slot now."""
        return self._waiting

    def _refuse(self) -> RateLimitError:
        message = (
            f"Capacity temporarily exceeded: {self._running} requests running "
            f"(max_concurrency={self.max_concurrency}) and {self._waiting} waiting "
            f"(max_queue={self.max_queue}); retry after {self.retry_after} s or start the "
            "server with a larger --max-queue"
        )
        return RateLimitError(
            message,
            retry_after=float(self.retry_after),
            status_code=429,
            errors=[WorkersAIErrorDetail(code=3040, message=message)],
        )

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a running slot for the duration of the block.

        Raises:
            RateLimitError: all slots are busy and the queue is full (code 3040).
        """
        if self._semaphore is None:
            # Created lazily so that it binds to the server's event loop.
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        if self._running + self._waiting >= self.max_concurrency + self.max_queue:
            raise self._refuse()
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._semaphore.release()
