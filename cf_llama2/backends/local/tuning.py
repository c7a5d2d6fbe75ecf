"""How a loaded model runs on this machine: its CPU thread count and the lean int8 forward.

:func:`tune_for_decoding` is applied once to every model the local backend uses (loaded by it or
handed to it). Both settings act inside the model's own ``forward``, so they hold for every path
that runs it: single requests, streaming, grammar-constrained and tool-call decoding, and batched
steps, in whatever thread runs the model.

Threads: torch's intra-op thread count is per calling thread (OpenMP), so a count set in the
main thread does not reach a worker thread and the other way round. A forward pre-hook sets it
in the thread that runs the model, before each forward pass (a no-op when already right). The
default is chosen by model size: decode steps of a small model are too short to gain from a
second thread, and on a busy machine a descheduled OpenMP thread stalls every step (measured
on SmolLM2-135M: 1 thread is faster than 2 even on a quiet 2-core machine; see
docs/benchmarks.md); models of 1B parameters or more keep torch's own default.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from .int8_cpu import install_lean_int8, remove_lean_int8

__all__ = ["SMALL_MODEL_PARAMETERS", "check_threads", "default_threads", "tune_for_decoding"]

SMALL_MODEL_PARAMETERS = 1_000_000_000
"""Below this many parameters a model decodes on one CPU thread by default."""


def check_threads(value: Any) -> int | None:
    """Validate ``num_threads``: ``None`` (chosen by model size), ``0`` (leave torch's setting
    alone) or a positive count."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"num_threads must be None (chosen by model size), 0 (leave torch's setting as it "
            f"is) or a positive integer; got {value!r}"
        )
    return value


def default_threads(model: Any) -> int:
    """The thread count for ``model`` when none is given: 1 below 1B parameters, else torch's
    current default."""
    import torch

    count = sum(p.numel() for p in model.parameters())
    if count < SMALL_MODEL_PARAMETERS:
        return 1
    return int(torch.get_num_threads())


def _thread_hook(threads: int) -> Any:
    import torch

    def hook(module: Any, args: Any) -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    return hook


def tune_for_decoding(model: Any, *, num_threads: int | None, lean_int8: bool) -> int:
    """Apply the thread count and (or remove) the lean int8 forward; returns the thread count in
    force (0: torch's setting is left alone). Calling it again replaces the earlier settings."""
    handle = getattr(model, "_cf_llama2_thread_hook", None)
    if handle is not None:
        handle.remove()
        model._cf_llama2_thread_hook = None
    threads = default_threads(model) if num_threads is None else num_threads
    if threads > 0 and hasattr(model, "register_forward_pre_hook"):
        model._cf_llama2_thread_hook = model.register_forward_pre_hook(_thread_hook(threads))
    if lean_int8:
        install_lean_int8(model)
    else:
        remove_lean_int8(model)
    return threads
