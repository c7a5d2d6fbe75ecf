"""StopFilter: stop sequences applied to streamed text."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from cf_llama2.errors import RequestValidationError
from cf_llama2.schema.stop import StopFilter


def run(stop: Sequence[str], chunks: Sequence[str]) -> tuple[str, StopFilter]:
    f = StopFilter(stop)
    out = "".join(f.feed(c) for c in chunks) + f.flush()
    return out, f


def reference(stop: Sequence[str], text: str) -> str:
    """Cut at the stop sequence that completes first (then the one that starts first)."""
    ends = [(text.find(s) + len(s), text.find(s)) for s in stop if s in text]
    return text[: min(ends)[1]] if ends else text


def test_no_stop_passes_text_through_without_holding() -> None:
    f = StopFilter([])
    assert f.feed("Hello") == "Hello"
    assert f.feed(" world\n") == " world\n"
    assert f.flush() == ""
    assert not f.stopped


def test_stop_in_one_chunk() -> None:
    f = StopFilter(["\nUser:"])
    assert f.feed("Hi there.\nUser: more") == "Hi there."
    assert f.stopped
    assert f.matched == "\nUser:"
    assert f.feed("anything") == ""
    assert f.flush() == ""


def test_stop_split_across_chunks() -> None:
    f = StopFilter(["STOP"])
    assert f.feed("abc S") == "abc "
    assert f.feed("T") == ""
    assert f.feed("O") == ""
    assert not f.stopped
    assert f.feed("P and more") == ""
    assert f.stopped
    assert f.flush() == ""


def test_held_prefix_is_released_when_it_does_not_complete() -> None:
    f = StopFilter(["STOP"])
    assert f.feed("abc ST") == "abc "
    assert f.feed("ART") == "START"
    assert not f.stopped


def test_held_prefix_is_flushed_at_the_end() -> None:
    f = StopFilter(["STOP"])
    assert f.feed("the end ST") == "the end "
    assert f.flush() == "ST"
    assert f.flush() == ""


def test_earliest_stop_wins() -> None:
    out, f = run(["world", "lo w"], ["Hello world"])
    assert out == "Hel"
    assert f.matched == "lo w"


def test_the_sequence_that_completes_first_wins_in_any_split() -> None:
    for chunks in (["abcde"], ["abcd", "e"], list("abcde")):
        out, f = run(["abcde", "cd"], chunks)
        assert out == "ab"
        assert f.matched == "cd"
    out, f = run(["bc", "abc"], ["xabc"])
    assert out == "x"
    assert f.matched == "abc"


def test_overlapping_prefixes_char_by_char() -> None:
    out, f = run(["aab"], list("xaaab tail"))
    assert out == "xa"
    assert f.stopped


def test_stop_at_the_very_start() -> None:
    out, f = run(["###"], ["###", "rest"])
    assert out == ""
    assert f.stopped


def test_a_single_string_is_one_stop_sequence() -> None:
    out, _ = run("END", ["a", "bEN", "Dc"])  # type: ignore[arg-type]
    assert out == "ab"


@pytest.mark.parametrize("bad", [[""], ["ok", ""], [None], [3]])
def test_invalid_stop_sequences_are_rejected(bad: list[object]) -> None:
    with pytest.raises(RequestValidationError, match="must be a non-empty string") as err:
        StopFilter(bad)  # type: ignore[arg-type]
    assert err.value.field.startswith("stop.")


def test_repr_shows_the_state() -> None:
    assert repr(StopFilter(["x"])) == "StopFilter(stop=['x'], stopped=False)"


@pytest.mark.parametrize("seed", range(25))
def test_any_split_matches_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "ab\n:"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
    stop = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(2)]
    expected = reference(stop, text)
    for i, j in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        out, f = run(stop, [text[:i], text[i:j], text[j:]])
        assert out == expected, (stop, text, i, j)
        assert f.stopped == any(s in text for s in stop)
    out, _ = run(stop, list(text))
    assert out == expected
