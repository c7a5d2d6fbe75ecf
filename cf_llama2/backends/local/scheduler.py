"""The step scheduler: one thread owns the model and advances every active request per step.

Continuous batching: each loop iteration admits waiting requests (up to ``max_batch_size``
running; each new one is prefilled alone and gets its first token at once), drops the requests
that were cancelled, then runs one forward pass over all running requests and hands each its
own row of logits. A request that finishes leaves at once and frees its slot for the next step.

Everything per request stays per request (:class:`~.generation.Decoding`: sampler and seed,
penalties, grammar, stop filter, tool-call parser, usage). An exception raised while deciding
one request's token fails that request only; a failed forward pass fails the requests that were
in it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ...errors import ServerError
from ...schema import StreamEvent
from .batching import Runner
from .generation import Decoding

__all__ = ["END", "Failure", "Sink", "StepScheduler"]

END = object()
"""Sent to a sink after the last event of a request."""


class Failure:
    """Sent to a sink when its request failed; :attr:`exc` is the error to raise."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


Sink = Callable[[Any], None]
"""Receives a request's events, then :data:`END` or a :class:`Failure`."""


class _Slot:
    def __init__(self, decoding: Decoding, lora: str | None, sink: Sink) -> None:
        self.decoding = decoding
        self.lora = lora
        self.sink = sink
        self.state: Any = None

    @property
    def next_ids(self) -> list[int]:
        return self.decoding.next_ids


class StepScheduler:
    """Runs requests in shared model steps on one daemon thread.

    Args:
        make_runner: builds the :class:`~.batching.Runner` (called once, on the thread).
        max_batch_size: requests decoded together at most; more wait for a free slot.
        name: the thread's name.
    """

    def __init__(
        self, make_runner: Callable[[], Runner], *, max_batch_size: int, name: str
    ) -> None:
        self._make_runner = make_runner
        self.max_batch_size = max_batch_size
        self._waiting: deque[_Slot] = deque()
        self._running: list[_Slot] = []
        self._joining: list[_Slot] = []
        self._wake = threading.Condition()
        self._closed = False
        self.steps = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """The thread stopped (closed, or its runner could not be built)."""
        return self._closed

    @property
    def running(self) -> int:
        """Requests in the batch now."""
        return len(self._running)

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot in the batch."""
        return len(self._waiting)

    def submit(self, decoding: Decoding, lora: str | None, sink: Sink) -> None:
        """Queue a request; its events go to ``sink`` from the scheduler thread.

        Raises:
            ServerError: the scheduler was closed.
        """
        with self._wake:
            if self._closed:
                raise ServerError("the local backend was closed; create a new one")
            self._waiting.append(_Slot(decoding, lora, sink))
            self._wake.notify()

    def close(self) -> None:
        """Stop the thread; requests still queued or running fail with :class:`ServerError`."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    # -- the thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        runner: Runner | None = None
        try:
            runner = self._make_runner()
            while self._next_batch():
                self._step(runner)
        except BaseException as exc:  # the runner could not be built: nothing can run
            self._fail_all(exc)
            return
        self._fail_all(ServerError("the local backend was closed before the answer ended"))

    def _next_batch(self) -> bool:
        """Wait for work; move waiting requests into free slots. False once closed."""
        with self._wake:
            while not self._closed and not self._running and not self._waiting:
                self._wake.wait()
            if self._closed:
                return False
            joining: list[_Slot] = []
            while self._waiting and len(self._running) + len(joining) < self.max_batch_size:
                joining.append(self._waiting.popleft())
        self._joining = joining
        return True

    def _step(self, runner: Runner) -> None:
        for slot in self._joining:
            if slot.decoding.done or slot.decoding.cancelled:
                self._end(runner, slot, lambda d: d.finish("stop" if d.cancelled else "length"))
                continue
            try:
                logits = runner.prefill(slot)
            except BaseException as exc:
                self._fail(runner, slot, exc)
                continue
            self._running.append(slot)
            self._advance(runner, slot, logits)
        self._joining = []
        for slot in [s for s in self._running if s.decoding.cancelled]:
            self._end(runner, slot, lambda d: d.finish("stop"))
        if not self._running:
            return
        batch = list(self._running)
        try:
            logits = runner.decode(batch)
        except BaseException as exc:
            for slot in batch:
                self._fail(runner, slot, exc)
            return
        self.steps += 1
        for row, slot in enumerate(batch):
            self._advance(runner, slot, logits[row : row + 1])

    def _advance(self, runner: Runner, slot: _Slot, logits: Any) -> None:
        try:
            events = slot.decoding.advance(logits)
        except BaseException as exc:
            self._fail(runner, slot, exc)
            return
        self._send(slot, events)
        if slot.decoding.done:
            self._leave(runner, slot)
            slot.sink(END)

    def _end(
        self, runner: Runner, slot: _Slot, finish: Callable[[Decoding], list[StreamEvent]]
    ) -> None:
        try:
            events = finish(slot.decoding)
        except BaseException as exc:
            self._fail(runner, slot, exc)
            return
        self._send(slot, events)
        self._leave(runner, slot)
        slot.sink(END)

    @staticmethod
    def _send(slot: _Slot, events: list[StreamEvent]) -> None:
        for event in events:
            slot.sink(event)

    def _fail(self, runner: Runner, slot: _Slot, exc: BaseException) -> None:
        self._leave(runner, slot)
        slot.sink(Failure(exc))

    def _leave(self, runner: Runner, slot: _Slot) -> None:
        if slot in self._running:
            self._running.remove(slot)
        if slot.state is not None:
            runner.release(slot)

    def _fail_all(self, exc: BaseException) -> None:
        with self._wake:
            self._closed = True
            slots = list(self._running) + list(self._waiting) + list(self._joining)
            self._running, self._waiting, self._joining = [], deque(), []
        for slot in slots:
            slot.sink(Failure(exc))
