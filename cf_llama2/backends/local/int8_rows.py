"""Row-independent LLM.int8() matmuls for batched decoding: each row as if it ran alone.

bitsandbytes' int8 layers (``Linear8bitLt`` with an outlier threshold, 6.0 by default) take the
input columns that hold an outlier (``|x| >= threshold``) out of the int8 matmul and multiply
them in 16-bit instead. The outlier columns are pooled over the whole batch: a value in one
sequence's row changes how every other row is quantized, so a request's greedy answer would
depend on what else is in the batch (measured on the embedded model: logits off by up to 1.7,
6 of 8 answers changed within 24 tokens; with the threshold at 0 the batched rows were
bit-identical to single-sequence runs).

Inside :func:`rows_apart`, an int8 layer that receives several rows with outliers computes each
row exactly as bitsandbytes computes a lone row: its own outliers are zeroed before its row-wise
quantization, the int8 matmul and dequantization run for all rows at once (integer products and
elementwise scaling, independent per row), and each row's own outlier columns are added back
with the same ``addmm`` a lone row gets. Layers without outliers in the batch take bitsandbytes'
own path, which is then row-independent already. Prefill (many rows of one sequence) is left to
bitsandbytes as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["install", "rows_apart"]

_flag = threading.local()


@contextmanager
def rows_apart() -> Iterator[None]:
    """Within the block (on this thread), int8 layers compute each input row on its own."""
    previous = getattr(_flag, "on", False)
    _flag.on = True
    try:
        yield
    finally:
        _flag.on = previous


def install(model: Any) -> int:
    """Wrap the forward of every int8 layer of ``model`` with an outlier threshold (once).

    Returns:
        The number of layers wrapped (0 for a model without bitsandbytes int8 layers).
    """
    count = 0
    for module in model.modules():
        if type(module).__name__ != "Linear8bitLt":
            continue
        if getattr(module, "_cf_rows", None) is module.forward:  # already ours (the forward
            continue  # may have been swapped since, e.g. by removing the lean int8 forward)
        state = getattr(module, "state", None)
        if state is None or not getattr(state, "threshold", 0.0):
            continue
        module.forward = module._cf_rows = _wrap(module, module.forward)
        count += 1
    return count


def _wrap(module: Any, original: Any) -> Any:
    def forward(x: Any) -> Any:
        if getattr(_flag, "on", False) and not module.training:
            out = _row_exact(module, x)
            if out is not None:
                return out
        return original(x)

    return forward


def _row_exact(module: Any, x: Any) -> Any:
    """The per-row computation, or ``None`` when bitsandbytes' own path is already exact."""
    import torch

    shape = x.shape
    if x.numel() // shape[-1] <= 1:
        return None
    if module.weight.CB is not None:
        module.init_8bit_state()
    state = module.state
    if state.CB is None or state.SCB is None:
        return None
    a = x.reshape(-1, shape[-1])
    a16 = a.to(torch.float16)
    outliers = a16.abs() >= state.threshold
    if not bool(outliers.any()):
        return None
    bias = module.bias
    if bias is not None and bias.dtype != x.dtype:
        bias.data = bias.data.to(x.dtype)
    ops = torch.ops.bitsandbytes
    ca, sca, _ = ops.int8_vectorwise_quant.default(a16.masked_fill(outliers, 0), 0.0)
    out = ops.int8_scaled_mm.default(ca, state.CB, sca, state.SCB, bias=bias, dtype=a.dtype)
    for row in torch.nonzero(outliers.any(dim=1)).view(-1).tolist():
        cols = torch.argwhere(outliers[row]).view(-1)
        sub_b = ops.int8_vectorwise_dequant.default(state.CB[:, cols].contiguous(), state.SCB)
        out[row : row + 1] = out[row : row + 1].addmm(a[row : row + 1, cols], sub_b.to(a.dtype).t())
    if not state.has_fp16_weights:
        module.weight.data = state.CB
    return out.reshape(*shape[:-1], state.CB.shape[0])
