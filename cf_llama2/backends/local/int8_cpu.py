"""A lean CPU forward for bitsandbytes int8 linear layers: the same numbers, a fraction of the time.

On CPU, bitsandbytes' ``Linear8bitLt`` runs LLM.int8() (row-wise int8 activations, int8 weights,
an int32 matmul, outlier columns above ``threshold`` in the activation dtype) through an autograd
function, five registered custom ops and a logger call per layer: for a 135M model that is
~80% of a decode step, almost all of it Python and dispatch around a ~60 us int8 matmul.

:func:`install_lean_int8` gives each CPU ``Linear8bitLt`` of a model a forward that computes the
same thing with plain tensor ops, in the same dtypes and the same order (so the outputs are
bit-identical and greedy answers do not change), and that quantizes an activation once when
sibling layers read the very same tensor (q/k/v of one attention, gate/up of one MLP). The
weights stay bitsandbytes' ``Int8Params``; training, autograd, non-CPU tensors and layers not
yet initialised go through bitsandbytes' own forward.
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["install_lean_int8", "lean_int8_layers", "remove_lean_int8"]

_DEQUANT = 6.200124e-05  # 1 / (127 * 127), as bitsandbytes writes it
_WEIGHT_DEQUANT = 7.874015718698502e-3  # 1 / 127
_ATTRIBUTES = (
    *("_lean_fallback", "_lean_torch", "_lean_int_mm", "_lean_linear", "_lean_shared"),
    "_lean_int8",
)


class _SharedInput:
    """The last quantized activation of a group of sibling layers, reused while the same tensor
    comes back; emptied after each forward pass of the model (so nothing outlives a step)."""

    __slots__ = ("quantized", "source", "threshold", "version")

    def __init__(self) -> None:
        self.source: Any = None
        self.threshold = 0.0
        self.version = -1
        self.quantized: tuple[Any, Any, Any] | None = None

    def clear(self) -> None:
        self.source = self.quantized = None


def _kernels() -> tuple[Any, Any]:
    """The int8 matmul (see :func:`_int_mm_kernel`) and, where that is the compiled AVX2 kernel,
    the compiled whole-layer function of :mod:`.int8_kernel` (else ``None``)."""
    from .int8_kernel import avx2_int8_linear

    int_mm = _int_mm_kernel()
    is_compiled = getattr(int_mm, "__module__", "") == "cf_llama2.backends.local.int8_kernel"
    return int_mm, avx2_int8_linear() if is_compiled else None


def _int_mm_kernel() -> Any:
    """The int8 x int8 -> int32 matmul: ``torch._int_mm`` where bitsandbytes uses it (AVX-512);
    elsewhere the compiled AVX2 kernel of :mod:`.int8_kernel` for decode-sized inputs (exact
    integer sums, like ``torch._int_mm``) in front of bitsandbytes' own op (a float32 matmul
    that converts the weight on every call), or that op alone where the kernel is unavailable."""
    import torch

    try:
        from bitsandbytes.backends.cpu import ops as cpu_ops

        if getattr(cpu_ops, "_has_avx512", False) and hasattr(torch, "_int_mm"):
            return lambda a, b: torch._int_mm(a, b.t())
    except ImportError:  # pragma: no cover - depends on the bitsandbytes build
        pass
    from .int8_kernel import avx2_int8_matmul

    fallback = torch.ops.bitsandbytes.int8_linear_matmul.default
    return avx2_int8_matmul(fallback) or fallback


def _quantize(torch: Any, x2d: Any, threshold: float) -> tuple[Any, Any, Any]:
    """Row-wise int8 activations, their scales and the outlier columns (or ``None``)."""
    xf = x2d.to(torch.float16).float()  # bitsandbytes quantizes from float16
    magnitude = xf.abs()
    cols = None
    if threshold > 0.0:
        outliers = magnitude >= threshold
        if bool(outliers.any()):
            cols = outliers.any(dim=0).nonzero().view(-1)
            xf = xf.masked_fill(outliers, 0.0)
            magnitude = xf.abs()
    row_stats = magnitude.amax(dim=1)
    quantized = torch.round(xf * (127.0 / row_stats.unsqueeze(-1))).to(torch.int8)
    if cols is not None and x2d.shape[0] > 1:
        quantized[:, cols] = 0
    return quantized, row_stats, cols


def _lean_forward(self: Any, x: Any) -> Any:
    torch = self._lean_torch
    state = self.state
    if (
        x.device.type != "cpu"
        or self.training
        or state.has_fp16_weights
        or state.CB is None
        or self.weight.CB is not None
        or (self.bias is not None and self.bias.dtype != x.dtype)
        or (x.requires_grad and torch.is_grad_enabled())
        or x.numel() == 0
    ):
        return self._lean_fallback(x)
    linear = self._lean_linear
    if linear is not None and self.bias is None:  # the compiled kernel: the layer in one call
        out = linear(x.reshape(-1, x.shape[-1]), state.CB, state.SCB, state.threshold, _DEQUANT)
        if out is not None:
            return out.view(*x.shape[:-1], state.CB.shape[0])
    shared: _SharedInput = self._lean_shared
    version = -2 if x.is_inference() else x._version  # inference tensors have no counter
    if (
        shared.source is x
        and shared.version == version
        and shared.threshold == state.threshold
        and shared.quantized is not None
    ):
        quantized, row_stats, cols = shared.quantized
    else:
        quantized, row_stats, cols = _quantize(torch, x.reshape(-1, x.shape[-1]), state.threshold)
        shared.source, shared.version, shared.threshold = x, version, state.threshold
        shared.quantized = (quantized, row_stats, cols)
    weight, scales = state.CB, state.SCB
    acc = self._lean_int_mm(quantized, weight)
    out = acc * (row_stats.unsqueeze(-1) * scales.unsqueeze(0)) * _DEQUANT
    if self.bias is not None:
        out += self.bias
    out = out.to(x.dtype)
    if cols is not None and cols.numel():
        sub_x = x.reshape(-1, x.shape[-1])[:, cols]
        sub_w = (weight[:, cols] * scales.view(-1, 1) * _WEIGHT_DEQUANT).to(x.dtype).t()
        out = out.addmm(sub_x, sub_w)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def lean_int8_layers(model: Any) -> list[Any]:
    """The bitsandbytes int8 linear layers of ``model`` that run the lean forward."""
    return [m for m in model.modules() if getattr(m, "_lean_int8", False)]


def install_lean_int8(model: Any) -> int:
    """Give every ``Linear8bitLt`` of ``model`` on CPU the lean inference forward.

    Idempotent (the kernels are chosen again, so ``CF_LLAMA2_INT8_KERNEL`` takes effect); returns
    how many layers run it. Layers on another device keep bitsandbytes' forward (its CUDA
    kernels are its own). Each layer is initialised by one call of the original forward on
    first use.
    """
    import torch

    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    int_mm, linear = _kernels()
    count = 0
    groups: list[_SharedInput] = []
    parents: list[Any] = list(model.modules())
    for parent in parents:
        shared = _SharedInput()  # siblings (q/k/v, gate/up) read the same input tensor
        children: list[Any] = list(parent.children())
        for module in children:
            if _is_cpu_int8(module, bnb):
                _patch(module, torch, int_mm, linear, shared)
                count += 1
        if shared in [getattr(m, "_lean_shared", None) for m in children]:
            groups.append(shared)
    old = getattr(model, "_lean_int8_hook", None)
    if old is not None:
        old.remove()
    if count:
        model._lean_int8_hook = model.register_forward_hook(lambda *_: _clear(groups))
    return count


def _clear(groups: list[_SharedInput]) -> None:
    for group in groups:
        group.clear()


def _is_cpu_int8(module: Any, bnb: Any) -> bool:
    if not isinstance(module, bnb.nn.Linear8bitLt):
        return False
    return bool(module.weight.device.type == "cpu")


def _patch(module: Any, torch: Any, int_mm: Any, linear: Any, shared: _SharedInput) -> None:
    if not getattr(module, "_lean_int8", False):
        module._lean_fallback = module.forward
        module._lean_torch = torch
        module.forward = types.MethodType(_lean_forward, module)
        module._lean_int8 = True
    module._lean_int_mm = int_mm  # chosen again on each install (CF_LLAMA2_INT8_KERNEL)
    module._lean_linear = linear
    module._lean_shared = shared


def remove_lean_int8(model: Any) -> int:
    """Undo :func:`install_lean_int8`: bitsandbytes' own forward again. Returns the count."""
    hook = getattr(model, "_lean_int8_hook", None)
    if hook is not None:
        hook.remove()
        model._lean_int8_hook = None
    layers = lean_int8_layers(model)
    for module in layers:
        module.forward = module._lean_fallback
        for name in _ATTRIBUTES:
            delattr(module, name)
    return len(layers)
