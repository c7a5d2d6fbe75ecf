"""Property tests of the SSE decoders: any bytes, any chunking, only typed errors, no hang.

Bounded by default and deterministic: ``CF_LLAMA2_FUZZ_CASES`` (default 10,000) cases, as
``CASES // 10`` generated streams per test, each decoded whole and in :data:`SPLITS` other
chunkings (10,000 decodes of the framing decoder, 5,000 of the wire stream decoder).
``CF_LLAMA2_FUZZ_CASES=200000`` runs a longer search.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cf_llama2.backends.remote.exchange import PreparedCall, StreamDecoder
from cf_llama2.backends.remote.sse import ServerSentEvent, SSEDecoder
from cf_llama2.errors import BadResponseError, CfLlama2Error
from cf_llama2.schema import ChatRequest

CASES = int(os.environ.get("CF_LLAMA2_FUZZ_CASES", "10000"))
SPLITS = 9  # chunkings per generated stream, besides the whole: 10 decodes per example
EXAMPLES = max(1, CASES // (SPLITS + 1))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAX_LINE = 64

_FIELD = st.sampled_from(
    [b"data", b"data:", b"data: ", b"event: ", b"event: error", b"id: ", b"retry: ", b":", b""]
)
_END = st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n", b""])
_TEXT = st.binary(max_size=24) | st.text(max_size=24).map(str.encode)
_PIECE = st.tuples(_FIELD, _TEXT, _END).map(b"".join)
STREAMS = st.lists(_PIECE | st.binary(max_size=8), max_size=12).map(b"".join)


def _decode(chunks: list[bytes]) -> tuple[list[ServerSentEvent], str | None]:
    decoder = SSEDecoder(max_line=MAX_LINE)
    events: list[ServerSentEvent] = []
    try:
        for chunk in chunks:
            events += decoder.feed(chunk)
        events += decoder.flush()
    except BadResponseError as exc:
        return events, type(exc).__name__
    return events, None


def _chunkings(seed: int, size: int) -> list[list[int]]:
    """``SPLITS`` ways to cut ``size`` bytes: one byte at a time, then random cut points."""
    rng = random.Random(seed)
    out = [list(range(1, size))]
    out += [
        [rng.randrange(size + 1) for _ in range(rng.randrange(1, 6))] for _ in range(SPLITS - 1)
    ]
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@FUZZ
@given(data=STREAMS, seed=st.integers(min_value=0))
def test_sse_framing_is_the_same_for_any_chunking_and_fails_only_typed(
    data: bytes, seed: int
) -> None:
    whole, whole_error = _decode([data])
    for cuts in _chunkings(seed, len(data)):
        pieces, pieces_error = _decode(_split(data, cuts))
        assert whole_error == pieces_error
        if whole_error is None:
            assert pieces == whole
    for event in whole:
        assert len(event.data) <= MAX_LINE


_PAYLOAD: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["response", "p", "usage", "tool_calls", "errors", "name", "arguments"]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
_EVENT = st.one_of(
    _PAYLOAD.map(lambda p: b"data: " + json.dumps(p).encode() + b"\n\n"),
    _PAYLOAD.map(lambda p: b"event: error\ndata: " + json.dumps(p).encode() + b"\n\n"),
    st.just(b"data: [DONE]\n\n"),
    _PIECE,
)
WIRE_STREAMS = st.lists(_EVENT, max_size=6).map(b"".join)
CALL = PreparedCall(
    url="http://127.0.0.1/x",
    content=b"{}",
    headers={},
    request=ChatRequest(messages=[{"role": "user", "content": "q"}]),  # type: ignore[list-item]
    model="m",
    stream=True,
)


@FUZZ
@given(data=WIRE_STREAMS, seed=st.integers(min_value=0))
def test_stream_decoder_raises_only_typed_errors(data: bytes, seed: int) -> None:
    outcomes = set()
    for cuts in [[], *_chunkings(seed, len(data))[:4]]:
        decoder = StreamDecoder(CALL)
        try:
            for chunk in _split(data, cuts):
                decoder.feed(chunk)
                if decoder.done:
                    break
            decoder.end()
            outcomes.add("ok")
        except CfLlama2Error as exc:  # anything else fails the test
            outcomes.add(type(exc).__name__)
    assert len(outcomes) == 1  # the chunking never changes the outcome
