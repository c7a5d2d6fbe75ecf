"""Stop sequences applied to streamed text on every backend.

Workers AI has no ``stop`` field, so every backend cuts the answer itself: text goes through a
:class:`StopFilter` piece by piece. The filter emits text as soon as it cannot be the start of a
stop sequence, holds back a suffix that could still grow into one, and once a stop sequence is
complete emits only the text before it and reports ``stopped``.

Example:
    >>> f = StopFilter(["\\nUser:"])
    >>> f.feed("Hello\\nUs"), f.feed("er: hi"), f.stopped
    ('Hello', '', True)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RequestValidationError

__all__ = ["StopFilter"]


class StopFilter:
    """Cut streamed text at the first stop sequence.

    Args:
        stop: the stop sequences (non-empty strings); an empty list passes text through.

    Attributes:
        stopped: a stop sequence was seen; every later :meth:`feed` returns ``""``.
        matched: the stop sequence that ended the text (``None`` until one did).

    Raises:
        RequestValidationError: a stop sequence is not a non-empty string.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        if isinstance(stop, str):
            stop = [stop]
        for i, seq in enumerate(stop):
            if not isinstance(seq, str) or not seq:
                fix = "Remove it or give the text that should end the answer."
                raise RequestValidationError(
                    field=f"stop.{i}", limit="a non-empty string", value=seq, fix=fix
                )
        self.stop: tuple[str, ...] = tuple(dict.fromkeys(stop))
        self.stopped = False
        self.matched: str | None = None
        self._held = ""

    def __repr__(self) -> str:
        return f"StopFilter(stop={list(self.stop)!r}, stopped={self.stopped})"

    def feed(self, text: str) -> str:
        """Add streamed text; return the part that is safe to emit now.

        Text that could be the beginning of a stop sequence is held back until the next piece
        decides it. When a stop sequence completes, the text before it is returned, ``stopped``
        becomes true and everything after it (now and later) is dropped. The sequence that
        completes first wins, so the result does not depend on how the text was split.
        """
        if self.stopped or not text:
            return ""
        if not self.stop:
            return text
        buf = self._held + text
        # The stop sequence that completes first wins (what a token-by-token stream sees first);
        # of those ending at the same place, the one that starts first.
        best: tuple[int, int] | None = None
        for seq in self.stop:
            at = buf.find(seq)
            if at != -1 and (best is None or (at + len(seq), at) < best):
                best, self.matched = (at + len(seq), at), seq
        if best is not None:
            self.stopped = True
            self._held = ""
            return buf[: best[1]]
        keep = self._holdback(buf)
        self._held = buf[len(buf) - keep :]
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """Return the held-back text at the end of the stream (``""`` once stopped)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _holdback(self, buf: str) -> int:
        """Length of the longest suffix of ``buf`` that is a proper prefix of a stop sequence."""
        best = 0
        for seq in self.stop:
            for n in range(min(len(seq) - 1, len(buf)), best, -1):
                if buf.endswith(seq[:n]):
                    best = n
                    break
        return best
