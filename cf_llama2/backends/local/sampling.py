"""Request sampling fields -> logits processors and a token picker.

The fields mean what they mean on Workers AI: ``temperature`` 0 is greedy; ``top_p`` and
``top_k`` filter the distribution; ``repetition_penalty`` is the multiplicative penalty on tokens
already in the context (1 is off); ``frequency_penalty`` and ``presence_penalty`` subtract
``frequency * count`` and ``presence * (count > 0)`` from the logits of tokens already generated
(0 is off; Transformers has no processor for these, so :class:`FrequencyPresencePenalty` adds
them); ``seed`` makes sampling reproducible through a private ``torch.Generator``.

Order per step: penalties on the raw logits, then the grammar mask (applied by the caller), then
temperature, top-k and top-p, then the pick. Masking before the warpers matters: top-k after the
mask can never leave only forbidden tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ...errors import RequestValidationError
from ...schema import SamplingParams

__all__ = ["FrequencyPresencePenalty", "Sampler", "make_sampler"]


class FrequencyPresencePenalty:
    """OpenAI-style frequency and presence penalties over the generated tokens only.

    Args:
        frequency: subtracted once per earlier occurrence of a token.
        presence: subtracted once if a token occurred at all.
        prompt_length: tokens of ``input_ids`` that are prompt (not penalised).
    """

    def __init__(self, frequency: float, presence: float, prompt_length: int) -> None:
        self.frequency = frequency
        self.presence = presence
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        generated = input_ids[:, self.prompt_length :]
        if generated.shape[-1] == 0:
            return scores
        counts = torch.zeros_like(scores)
        counts.scatter_add_(-1, generated, torch.ones_like(generated, dtype=scores.dtype))
        penalty = self.frequency * counts + self.presence * (counts > 0).to(scores.dtype)
        return scores - penalty


@dataclass
class Sampler:
    """The per-request processors and how the next token is picked."""

    penalties: list[Any] = field(default_factory=list)
    warpers: list[Any] = field(default_factory=list)
    greedy: bool = True
    generator: Any = None

    def penalise(self, input_ids: Any, scores: Any) -> Any:
        """Apply the penalty processors (before any grammar mask)."""
        for processor in self.penalties:
            scores = processor(input_ids, scores)
        return scores

    def pick(self, input_ids: Any, scores: Any) -> int:
        """Warp the (masked) scores and pick the next token id."""
        import torch

        if self.greedy:
            return int(torch.argmax(scores, dim=-1)[0])
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator)[0, 0])


def make_sampler(params: SamplingParams, *, prompt_length: int) -> Sampler:
    """Build the :class:`Sampler` for a request's sampling fields.

    Raises:
        RequestValidationError: ``repetition_penalty`` is 0 (Transformers needs a value > 0).
    """
    import torch
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    penalties: list[Any] = []
    if params.repetition_penalty is not None and params.repetition_penalty != 1.0:
        if params.repetition_penalty <= 0:
            limit = "> 0 on the local backend (1 means no penalty)"
            raise RequestValidationError(
                field="repetition_penalty", limit=limit, value=params.repetition_penalty
            )
        penalties.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.frequency_penalty or params.presence_penalty:
        penalties.append(
            FrequencyPresencePenalty(
                params.frequency_penalty or 0.0, params.presence_penalty or 0.0, prompt_length
            )
        )
    greedy = params.temperature == 0 or params.top_k == 1 or params.top_p == 0
    warpers: list[Any] = []
    if not greedy:
        if params.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k is not None:
            warpers.append(TopKLogitsWarper(params.top_k))
        if params.top_p is not None and params.top_p < 1.0:
            warpers.append(TopPLogitsWarper(params.top_p))
    generator = torch.Generator(device="cpu")
    generator.manual_seed(params.seed if params.seed is not None else random.getrandbits(63))
    return Sampler(penalties=penalties, warpers=warpers, greedy=greedy, generator=generator)
