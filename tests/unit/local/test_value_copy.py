"""Span copy steering inside a tool call (:mod:`cf_llama2.backends.local.value_copy`): a value
is steered to continue a span of the user's words, to close where that word or number ends, and
away from repeating itself once it is no span (the runaways a flat copy bonus caused)."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2.backends.local.value_copy import Steer, ValueCopy, value_position


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ('{"name":"f","arguments":{', "other", ""),
        ('{"name":"f","arguments":{"ci', "key", ""),  # a key, not a value
        ('{"name":"f","arguments":{"city":', "start", ""),
        ('{"name":"f","arguments":{"city":"', "string", ""),
        ('{"name":"f","arguments":{"city":"San Di', "string", "San Di"),
        ('{"name":"f","arguments":{"city":"say \\"hi', "string", 'say "hi'),
        ('{"name":"f","arguments":{"n":35', "number", "35"),
        ('{"name":"f","arguments":{"n":-0.5', "number", "-0.5"),
        ('{"name":"f","arguments":{"xs":[', "start", ""),
        ('{"name":"f","arguments":{"xs":[1,', "start", ""),
        ('{"name":"f","arguments":{"xs":[1,2', "number", "2"),
        ('{"name":"f","arguments":{"xs":["a","b', "string", "b"),
        ('{"name":"f","arguments":{"o":{"k', "key", ""),  # a key inside a nested object
        ('{"name":"f","arguments":{"xs":[1],"k', "key", ""),  # after an array, a key
        ('{"name":"f","arguments":{"city":"Paris"', "other", ""),
        ('{"name":"f","arguments":{"ok":true', "other", ""),
    ],
)
def test_value_position(text: str, kind: str, value: str) -> None:
    where = value_position(text)
    assert (where.kind, where.text) == (kind, value)


def ids(tokenizer: Any, text: str) -> list[int]:
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


CALL = '{"name":"f","arguments":{"v":'


def test_a_string_starts_on_a_word_continues_the_span_and_may_close_at_its_end(
    tokenizer: Any,
) -> None:
    copier = ValueCopy(tokenizer, ["What is the air quality in San Diego at 12pm?"])
    start = copier.steer(CALL + '"')
    assert ids(tokenizer, "San")[0] in start.favour
    assert ids(tokenizer, "quality")[0] in start.favour
    middle = copier.steer(CALL + '"San')
    assert middle.favour == (ids(tokenizer, " Diego")[0],)
    assert middle.close  # "San" ends a word: closing is as good a guess as going on
    inside = copier.steer(CALL + '"Sa')
    assert not inside.close  # mid-word: only the rest of the word
    assert copier.steer(CALL + '"San Diego').close


def test_a_repeated_character_is_favoured_once_then_penalised(tokenizer: Any) -> None:
    """The measured runaway: a flat bonus on the tokens of "C#" wrote "C####..." to the bound."""
    copier = ValueCopy(tokenizer, ["What is the key signature of C# major?"])
    hash_id = ids(tokenizer, "#")[0]
    after_c = copier.steer(CALL + '"C')
    assert hash_id in after_c.favour
    after_hash = copier.steer(CALL + '"C#')
    assert hash_id not in after_hash.favour
    assert after_hash.close
    assert ids(tokenizer, " major")[0] in after_hash.favour
    written = [*ids(tokenizer, "C"), hash_id, hash_id]  # as the model wrote it, one by one
    off_span = copier.steer(CALL + '"C##', written)
    assert (off_span.favour, off_span.close) == ((), False)
    assert hash_id in off_span.repeated


def test_numbers_are_copied_whole_thousands_separators_and_all(tokenizer: Any) -> None:
    copier = ValueCopy(tokenizer, ["There are 35,000 elephants; growth 0.015 over 5 years."])
    start = copier.steer(CALL)
    for digit in ("3", "0", "5"):
        assert ids(tokenizer, digit)[0] in start.favour
    assert copier.steer(CALL + "35").favour == (ids(tokenizer, "0")[0],)
    assert not copier.steer(CALL + "35").close
    assert copier.steer(CALL + "35000").close
    assert copier.steer(CALL + "0.01").favour == (ids(tokenizer, "5")[0],)
    assert copier.steer(CALL + "5").close  # "5 years": the number ends there
    # Not the tail of a longer number: "5" of "35,000" does not count as a span start.
    assert ids(tokenizer, "0")[0] not in copier.steer(CALL + "5").favour


def test_an_invented_number_is_steered_off_repeating_its_digits(tokenizer: Any) -> None:
    copier = ValueCopy(tokenizer, ["How many elephants will there be?"])
    written = ids(tokenizer, "1000")
    steer = copier.steer(CALL + "1000", written)
    assert (steer.favour, steer.close) == ((), False)
    assert set(steer.repeated) == set(written)


def test_keys_and_structure_get_no_steering(tokenizer: Any) -> None:
    copier = ValueCopy(tokenizer, ["city Paris"])
    for text in ('{"name":"f","arguments":{"ci', '{"name":"f","arguments":{"city":"Paris"'):
        steer = copier.steer(text, [1, 1])
        assert steer == Steer()


def test_values_the_arguments_already_hold_are_collected() -> None:
    where = value_position('{"name":"f","arguments":{"a":"San Diego","b":[12, 7],"c":true,"d":')
    assert where.kind == "start"
    assert where.done == ("San Diego", "12", "7")  # not the tool's name, not true


def test_words_another_argument_holds_are_steered_off_at_a_value_start(tokenizer: Any) -> None:
    """Measured: "Serena Williams" written as both the player and the sport."""
    copier = ValueCopy(tokenizer, ["What is the ranking of Serena Williams in tennis?"])
    serena, tennis = ids(tokenizer, "Serena")[0], ids(tokenizer, "tennis")[0]
    fresh = copier.steer('{"name":"f","arguments":{"player":"')
    assert {serena, tennis} <= set(fresh.favour)
    second = copier.steer('{"name":"f","arguments":{"player":"Serena Williams","sport":"')
    assert tennis in second.favour
    assert serena not in second.favour
    assert serena in second.repeated


def test_numbers_another_argument_holds_are_steered_off(tokenizer: Any) -> None:
    copier = ValueCopy(tokenizer, ["Pay 100 dollars over 3 months."])
    one, three = ids(tokenizer, "1")[0], ids(tokenizer, "3")[0]
    second = copier.steer('{"name":"f","arguments":{"amount":100,"months":')
    assert three in second.favour
    assert one in second.repeated
