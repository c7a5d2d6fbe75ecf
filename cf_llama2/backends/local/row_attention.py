"""Attention for batched decode steps, one row at a time over that row's own keys.

Left-padded rows with a padding mask give the right answer, but not the same floating-point
sums: the padding shifts where a row's keys fall in the attention kernel's blocks, so the
softmax and the weighted sum of values round differently than for the row alone, and greedy
answers drift after a few steps. In a batched decode step (inside :func:`rows_apart`) this
attention runs the model's own attention function once per row, on exactly the keys and values
the row would have alone (no padding, no mask), so each row's output is what it is alone; all
other layers still run batched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["NAME", "rows_apart"]

NAME = "cf_llama2_rows"
_local = threading.local()
_registered = threading.Lock()


def _register() -> None:
    from transformers import AttentionInterface

    with _registered:
        if not getattr(_register, "done", False):
            AttentionInterface.register(NAME, _row_attention)
            _register.done = True  # type: ignore[attr-defined]


@contextmanager
def rows_apart(model: Any, lengths: Sequence[int]) -> Iterator[None]:
    """Within the block, ``model``'s attention runs per row over its last ``lengths[i]`` keys
    (the new token included)."""
    _register()
    config = model.config
    inner = getattr(config, "_attn_implementation", None) or "eager"
    previous = getattr(_local, "state", None)
    _local.state = (list(lengths), inner)
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = inner
        _local.state = previous


def _row_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any
) -> tuple[Any, Any]:
    import torch
    from transformers import AttentionInterface
    from transformers.models.llama.modeling_llama import eager_attention_forward

    lengths, inner = _local.state
    attend: Any = AttentionInterface._global_mapping.get(inner, eager_attention_forward)
    outputs = []
    for row, n in enumerate(lengths):
        out, _ = attend(
            module,
            query[row : row + 1],
            key[row : row + 1, :, -n:].contiguous(),
            value[row : row + 1, :, -n:].contiguous(),
            None,
            **kwargs,
        )
        outputs.append(out)
    return torch.cat(outputs, dim=0), None
