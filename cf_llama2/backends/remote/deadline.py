"""The remote client's deadlines: one per attempt, not one per network read.

httpx applies its timeouts to each operation (connect, each read, each write), so a server that
sends one byte a second keeps a call alive forever. A :class:`Deadline` bounds the whole attempt
instead:

- a non-streamed call: connecting, sending and receiving the full answer within ``timeout``;
- a stream: the first event within ``timeout`` of the start, then each further event within
  ``timeout`` of the previous one (time spent by the caller between events does not count).

Each retry is a new attempt with a new deadline (the waits between attempts come on top).
"""

from __future__ import annotations

import time

import httpx

from ...errors import APITimeoutError
from .socket_deadline import DeadlineSeconds

__all__ = ["Deadline", "DeadlineExceeded"]


class DeadlineExceeded(Exception):
    """Raised inside an attempt when its deadline passed (turned into ``APITimeoutError``)."""


class Deadline:
    """A deadline of ``seconds`` from now, which a stream moves on with each event."""

    __slots__ = ("_at", "answered", "events", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self.answered = False  # the response headers arrived
        self.events = 0  # stream events delivered

    def remaining(self) -> float:
        """Seconds left (never below a millisecond, so it is usable as a timeout)."""
        return max(self._at - time.monotonic(), 0.001)

    def httpx_timeout(self) -> httpx.Timeout:
        """The per-operation httpx timeout: no single read may outlast the deadline.

        The value carries the deadline itself, so the transports of
        :mod:`.socket_deadline` can shorten each later read to the time then left.
        """
        return httpx.Timeout(DeadlineSeconds(self.remaining(), self))

    @property
    def at(self) -> float:
        """The monotonic instant the deadline passes (moved on by :meth:`next_event`)."""
        return self._at

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` when the deadline has passed."""
        if time.monotonic() >= self._at:
            raise DeadlineExceeded

    def next_event(self) -> None:
        """A stream event was delivered: the next one has ``seconds`` from now."""
        self.events += 1
        self._at = time.monotonic() + self.seconds

    def error(self, *, stream: bool) -> APITimeoutError:
        """The timeout error for this deadline, saying what was awaited.

        (A stream that stalls after delivering events ends in
        :class:`~cf_llama2.errors.IncompleteStreamError` instead, with the partial text.)
        """
        t = f"{self.seconds:g}"
        if stream:
            what = f"no stream event within timeout={t} s"
        elif self.answered:
            what = f"the answer did not finish arriving within timeout={t} s"
        else:
            what = f"no answer within timeout={t} s"
        return APITimeoutError(
            f"Workers AI timed out: {what}; no complete HTTP answer came. Retry, or raise "
            "timeout=.",
            timeout=self.seconds,
        )
