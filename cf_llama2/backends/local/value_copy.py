"""Copy steering inside a tool call: a value continues the user's words, or is left alone.

A small model asked for a call's arguments most often gets a value right by copying it from
the question ("San Diego", ``35000``). A flat bonus on every token of the user's words helps it
start such a copy, but it also rewards a token each time it repeats: measured on BFCL cases,
``"C####...`` (from "C#"), ``"S.S.S...`` (from "U.S.") and numbers of twelve digits written
until the schema's bound stopped them. :class:`ValueCopy` steers by *spans* instead:

* at the start of a value, the first tokens of the user's words and numbers get the bonus,
  except those of words and numbers another argument of the call holds already (those get
  the penalty below);
* inside a string or number value, only a token that continues the value as a span of the
  user's text gets it (the next token of that text after the written value), and where the
  written value ends a word or number of the user's text the token that closes the value
  gets it too;
* once the value is no longer a span of the user's text, nothing is favoured: the model writes
  what it writes, and a token repeated inside the value gets a penalty instead (a value is
  rarely one character over and over; ``1000000000000`` and ``C####`` are).

It reads only the call's text so far (as the tokenizer decodes it), so it works for any
tokenizer and any schema; the grammar still decides what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Position", "Steer", "ValueCopy", "value_position"]

_WORD = re.compile(r"[^\s\"'`,;:!?()\[\]{}<>]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER_CHARS = frozenset("-0123456789.eE+")
_MAX_SPANS = 8
_LOOKAHEAD = 24


@dataclass(frozen=True)
class Position:
    """Where the call's text ends: in a string value, in a number, at a value's start, in a
    key, or elsewhere (``kind`` ``"string"``, ``"number"``, ``"start"``, ``"key"`` or
    ``"other"``), with the value's text so far and the values the arguments hold already
    (``done``: strings and numbers, as written)."""

    kind: str
    text: str = ""
    done: tuple[str, ...] = ()


def value_position(call_text: str) -> Position:
    """Where ``call_text`` (a JSON call being written) ends, for :class:`ValueCopy`.

    A string is a value (not a key) when it follows ``:``, or ``[``/``,`` inside an array; a
    number is the run of number characters after such a place. Values inside the arguments
    (two or more levels deep: not the tool's name) are collected in ``done`` once complete.
    """
    stack: list[str] = []
    in_string = escaped = False
    string_start = literal_start = 0
    string_is_value = False
    done: list[str] = []
    last = ""  # the last structural character outside strings
    for i, ch in enumerate(call_text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                last = '"'
                if string_is_value and len(stack) >= 2:
                    done.append(call_text[string_start:i].replace('\\"', '"'))
            continue
        if ch.isspace():
            continue
        if last == "v" and ch in ",}]":
            literal = call_text[literal_start:i].strip()
            if len(stack) >= 2 and literal[:1] in _NUMBER_CHARS:
                done.append(literal)
        if ch == '"':
            in_string = True
            string_start = i + 1
            string_is_value = last == ":" or (last in "[," and stack[-1:] == ["["])
        elif ch in "{[":
            stack.append(ch)
            last = ch
        elif ch in "}]":
            if stack:
                stack.pop()
            last = ch
        elif ch in ":,":
            last = ch
        elif last != "v":
            last, literal_start = "v", i  # a literal starts (number, true, false, null)
    if in_string:
        if not string_is_value:
            return Position("key")
        return Position("string", call_text[string_start:].replace('\\"', '"'), tuple(done))
    at_value = last == ":" or (last in "[," and stack[-1:] == ["["])
    if at_value:
        return Position("start", "", tuple(done))
    if last == "v":
        tail = len(call_text)
        head = tail
        while head > 0 and call_text[head - 1] in _NUMBER_CHARS:
            head -= 1
        before = call_text[:head].rstrip()[-1:]
        if head < tail and (before == ":" or (before in "[," and stack[-1:] == ["["])):
            return Position("number", call_text[head:tail], tuple(done))
    return Position("other")


@dataclass(frozen=True)
class Steer:
    """What to do with the next token's scores: add the copy bias to ``favour`` (and to the
    tokens that end the value when ``close``), subtract the repeat penalty from ``repeated``."""

    favour: tuple[int, ...] = ()
    close: bool = False
    repeated: tuple[int, ...] = ()


class ValueCopy:
    """Span copy steering for one request (see the module docstring).

    Args:
        tokenizer: the model's tokenizer.
        texts: the user's messages.
    """

    def __init__(self, tokenizer: Any, texts: Iterable[str]) -> None:
        self.tokenizer = tokenizer
        self.texts = [t for t in texts if t]
        self.numbers = [_THOUSANDS.sub("", t) for t in self.texts]
        words: set[str] = set()
        numbers: set[str] = set()
        for text in self.texts:
            words.update(_WORD.findall(text))
        for text in self.numbers:
            numbers.update(_NUMBER.findall(text))
        self._word_first = {w: i for w in words if (i := self._first(w)) is not None}
        self._number_first = {n: i for n in numbers if (i := self._first(n)) is not None}
        self._memo: dict[tuple[str, str], Steer] = {}

    def _first(self, text: str) -> int | None:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return int(ids[0]) if ids else None

    def steer(
        self, call_text: str, value_ids: Sequence[int] = (), where: Position | None = None
    ) -> Steer:
        """The steering for the token after ``call_text``.

        Args:
            call_text: the call written so far.
            value_ids: the tokens written since the current value started (for the repeat
                penalty; may be empty).
            where: ``value_position(call_text)`` when the caller has it already.
        """
        where = where if where is not None else value_position(call_text)
        if where.kind == "start":  # a string's first token comes after its quote
            return self._starts(self._number_first, where.done)
        if where.kind == "string" and not where.text:
            return self._starts(self._word_first, where.done)
        if where.kind not in ("string", "number"):
            return Steer()
        key = (where.kind, where.text)
        steer = self._memo.get(key)
        if steer is None:
            steer = self._span(where)
            if len(self._memo) < 4096:
                self._memo[key] = steer
        if not steer.favour and not steer.close and value_ids:
            return Steer(repeated=tuple(set(value_ids)))
        return steer

    @staticmethod
    def _starts(first: dict[str, int], done: Sequence[str]) -> Steer:
        """The first tokens of the user's words (or numbers) that no value of the call holds
        yet; those of the words already used are steered off (two arguments seldom take the
        same words: measured, a small model wrote "Serena Williams" as both the player and the
        sport, "12pm" as both the time and the place)."""
        used = {w for value in done for w in (value, *_WORD.findall(value))}
        favour = {i for w, i in first.items() if w not in used}
        avoid = {i for w, i in first.items() if w in used} - favour
        return Steer(favour=tuple(sorted(favour)), repeated=tuple(sorted(avoid)))

    def _span(self, where: Position) -> Steer:
        text = where.text
        if where.kind == "number" and not text.strip("-"):
            return self._starts(self._number_first, ())
        sources = self.numbers if where.kind == "number" else self.texts
        favour: set[int] = set()
        close = False
        spans = 0
        for source in sources:
            start = source.find(text)
            while start >= 0 and spans < _MAX_SPANS:
                end = start + len(text)
                if where.kind == "number" and start > 0 and source[start - 1].isdigit():
                    start = source.find(text, start + 1)
                    continue
                spans += 1
                rest = source[end : end + _LOOKAHEAD]
                if where.kind == "number":
                    grows = rest[:1].isdigit() or (rest[:1] == "." and rest[1:2].isdigit())
                    if grows:
                        first = self._first(rest[:1])
                    else:
                        first, close = None, True
                else:
                    first = self._first(rest) if rest else None
                    if not rest or not rest[0].isalnum():
                        close = True
                if first is not None:
                    favour.add(first)
                start = source.find(text, start + 1)
        return Steer(favour=tuple(sorted(favour)), close=close)
