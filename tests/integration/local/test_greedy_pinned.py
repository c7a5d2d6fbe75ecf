"""Greedy answers of the embedded int8 model, pinned token by token (slow).

The ids were recorded with bitsandbytes' own int8 forward before the lean forward existed; the
decoding speed-ups must not change a single one of them. bitsandbytes multiplies int8 matrices
with ``torch._int_mm`` on CPUs with AVX-512 and in float32 elsewhere, and the two round the rest
of the step differently, so the pins are per family (recorded on an AVX-512 host and on an
AVX2-only host); everywhere, the lean forward must give exactly bitsandbytes' own answer.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from cf_llama2 import ChatRequest
from cf_llama2.backends.local import int8_rows
from cf_llama2.backends.local.int8_cpu import install_lean_int8, remove_lean_int8

pytestmark = pytest.mark.slow

AVX512_PINNED = {
    "What is the capital of France?": (
        [504, 3575, 282, 4649, 314, 7042, 30],
        "The capital of France is Paris.",
    ),
    "Write a haiku about the sea.": (
        [504, 6147, 282, 260, 3426, 28, 253, 13879, 6122, 28, 198],
        "The waves of the sea, a silent beauty,\nA",
    ),
    "List three prime numbers.": (
        [504, 1398, 282, 9552, 2966, 314, 347, 5558, 42, 216, 34],
        "The list of prime numbers is as follows: 2,",
    ),
}
"""prompt -> (ids fed back to the model, i.e. all but the last token; the answer's text)."""

AVX2_PINNED = {
    **AVX512_PINNED,
    "Write a haiku about the sea.": (
        [504, 6147, 282, 260, 3426, 28, 253, 13879, 284, 551, 1710],
        "The waves of the sea, a silent and unforgiving",
    ),
}


def _pinned() -> dict[str, tuple[list[int], str]]:
    """The pins of this CPU's int8 family."""
    from bitsandbytes.backends.cpu import ops as cpu_ops

    return AVX512_PINNED if getattr(cpu_ops, "_has_avx512", False) else AVX2_PINNED


def _greedy(backend: Any, prompt: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], str]:
    """The answer's text and the ids fed back to the model one at a time (decode steps)."""
    fed: list[int] = []
    model = backend._model
    forward = model.forward

    @functools.wraps(forward)  # keeps the signature that callers inspect
    def recording(*args: Any, **kwargs: Any) -> Any:
        ids = kwargs.get("input_ids")
        if ids is not None and tuple(ids.shape) == (1, 1):  # a decode step (prefill is longer)
            fed.append(int(ids[0, 0]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", recording)
    request = ChatRequest(
        messages=[{"role": "user", "content": prompt}], max_tokens=12, temperature=0
    )
    text = backend.run(request).response
    monkeypatch.undo()
    return fed, text


@pytest.mark.parametrize("prompt", list(AVX512_PINNED))
def test_greedy_ids_are_pinned_with_and_without_the_lean_forward(
    embedded_backend: Any, prompt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = embedded_backend._model
    assert embedded_backend.threads == 1  # a 135M model decodes on one thread by default
    lean = _greedy(embedded_backend, prompt, monkeypatch)
    remove_lean_int8(model)
    try:
        plain = _greedy(embedded_backend, prompt, monkeypatch)
    finally:
        install_lean_int8(model)
        int8_rows.install(model)  # batched steps of later tests keep their per-row exactness
    assert lean == plain, "the lean forward changed bitsandbytes' greedy answer"
    assert lean == _pinned()[prompt]
