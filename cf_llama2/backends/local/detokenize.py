"""Incremental detokenization: token ids in, text deltas out, never a broken character.

Each new token is decoded together with a few tokens before it, and the delta is the text past
what those earlier tokens decoded to. That keeps SentencePiece's leading spaces right and holds
back a token that ends in the middle of a UTF-8 character until the character is complete; at
the end (``max_tokens`` reached mid-character) the incomplete bytes are dropped, never shown as
U+FFFD.
"""

from __future__ import annotations

from typing import Any

__all__ = ["IncrementalDecoder"]


class IncrementalDecoder:
    """Turns a growing list of token ids into text deltas (special tokens skipped)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def add(self, token_id: int) -> str:
        """Add one token; return the text it completes (maybe empty, held back)."""
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """The text still held back at the end, without the bytes of an unfinished character
        (they decode to U+FFFD, which is dropped)."""
        if self._read >= len(self.ids):
            return ""
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :]).rstrip("\ufffd")
        self._prefix = self._read = len(self.ids)
        return after[len(before) :] if after.startswith(before) else after
