"""Model runners for the step scheduler: prefill one sequence, then decode many in one pass.

:class:`BatchedModelRunner` keeps one key/value cache per group of sequences that share a LoRA
adapter. Rows are left-padded to a common length; each row has its own attention mask (padding
masked out) and its own position ids (its real length), so RoPE positions and the attended keys
are exactly those of the sequence run alone. A new sequence is prefilled alone (batch of one, the
same forward pass as a lone request), then its cache rows are merged into its group; a sequence
that leaves is cut out and the columns that only held padding are dropped. Masked padding and
per-row positions leave each row's numbers as they are alone; the one cross-row effect on int8
models, bitsandbytes' outlier pooling, is removed by :mod:`.int8_rows`.

:class:`StepRunner` runs each sequence with its own single-sequence step function (no batching):
for models that cannot take a padded batch, and for tests that stand in for the model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from . import row_attention
from .int8_rows import install, rows_apart
from .lora import LoraAdapters

__all__ = ["BatchedModelRunner", "Runner", "SequenceSlot", "StepRunner"]


class SequenceSlot(Protocol):
    """What a runner needs to know about one sequence."""

    lora: str | None
    state: Any

    @property
    def next_ids(self) -> list[int]:
        """The ids to feed next: the prompt, then the last token."""


class Runner(Protocol):
    """Runs the model for the scheduler (always from the scheduler's thread)."""

    def prefill(self, slot: SequenceSlot) -> Any:
        """Run ``slot``'s prompt; return its next-token logits ``[1, vocab]`` (CPU float32)."""

    def decode(self, slots: Sequence[SequenceSlot]) -> Any:
        """Feed each slot's last token; return logits ``[len(slots), vocab]`` (CPU float32)."""

    def release(self, slot: SequenceSlot) -> None:
        """Forget ``slot`` (it finished, failed or was cancelled)."""


class StepRunner:
    """One single-sequence ``step(new_ids, cache)`` per slot, run one after the other.

    Args:
        make_step: ``make_step(lora)`` returns a fresh :data:`~.generation.Step`.
    """

    def __init__(self, make_step: Any) -> None:
        self._make_step = make_step

    def prefill(self, slot: SequenceSlot) -> Any:
        step = self._make_step(slot.lora)
        logits, cache = step(slot.next_ids, None)
        slot.state = (step, cache)
        return logits

    def decode(self, slots: Sequence[SequenceSlot]) -> Any:
        import torch

        rows = []
        for slot in slots:
            step, cache = slot.state
            logits, cache = step(slot.next_ids, cache)
            slot.state = (step, cache)
            rows.append(logits)
        return torch.cat(rows, dim=0)

    def release(self, slot: SequenceSlot) -> None:
        slot.state = None


class _Group:
    """The sequences that share one adapter, and their left-padded cache."""

    def __init__(self) -> None:
        self.slots: list[SequenceSlot] = []
        self.lengths: dict[int, int] = {}  # id(slot) -> real tokens in the cache
        self.cache: Any = None  # a DynamicCache, keys and values [B, H, T, D] per layer
        self.incoming: list[tuple[SequenceSlot, list[tuple[Any, Any]]]] = []
        self.leaving: set[int] = set()

    @property
    def layers(self) -> list[tuple[Any, Any]]:
        return _cache_layers(self.cache) if self.cache is not None else []

    @property
    def width(self) -> int:
        layers = self.layers
        return int(layers[0][0].shape[-2]) if layers else 0

    def rebuild(self) -> None:
        """Apply joins and leaves: one cache for the rows that remain, left-padded."""
        import torch
        from transformers import DynamicCache

        width, old = self.width, self.layers
        sources: list[tuple[SequenceSlot, int, Any]] = []
        for row, slot in enumerate(self.slots):
            if id(slot) not in self.leaving:
                sources.append((slot, self.lengths[id(slot)], ("old", row)))
        for slot, layers in self.incoming:
            sources.append((slot, int(layers[0][0].shape[-2]), ("new", layers)))
        for key in self.leaving:
            self.lengths.pop(key, None)
        self.incoming, self.leaving = [], set()
        self.slots = [s for s, _, _ in sources]
        if not sources:
            self.cache = None
            return
        new_width = max(n for _, n, _ in sources)
        n_layers = max([len(old)] + [len(w) for _, _, (kind, w) in sources if kind == "new"])
        merged: list[tuple[Any, Any]] = []
        for layer in range(n_layers):
            parts: list[tuple[Any, Any]] = []
            for _, n, (kind, where) in sources:
                if kind == "old":
                    k, v = old[layer]
                    parts.append((k[where, :, width - n :], v[where, :, width - n :]))
                else:
                    k, v = where[layer]
                    parts.append((k[0], v[0]))
            k0 = parts[0][0]
            shape = (len(parts), k0.shape[0], new_width, k0.shape[-1])
            keys = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
            v_shape = (*shape[:3], parts[0][1].shape[-1])
            values = torch.zeros(v_shape, dtype=k0.dtype, device=k0.device)
            for row, ((k, v), (_, n, _)) in enumerate(zip(parts, sources, strict=True)):
                keys[row, :, new_width - n :] = k
                values[row, :, new_width - n :] = v
            merged.append((keys, values))
        self.cache = DynamicCache(ddp_cache_data=merged)
        for slot, n, _ in sources:
            self.lengths[id(slot)] = n


def _cache_layers(cache: Any) -> list[tuple[Any, Any]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return [(item[0], item[1]) for item in cache]  # legacy tuple-of-tuples caches


class BatchedModelRunner:
    """Batched decoding on a Transformers causal LM (see the module docstring).

    Args:
        model: the loaded model.
        adapters: its LoRA adapters (switched per group).
        lock: held around every forward pass (shared with single-sequence steps).
    """

    def __init__(self, model: Any, adapters: LoraAdapters | None, lock: threading.Lock) -> None:
        from .planning import forward_kwargs

        self._model = model
        self._adapters = adapters
        self._lock = lock
        self._device = model.get_input_embeddings().weight.device
        self._cache_kw, self._extra = forward_kwargs(model)
        self._groups: dict[str | None, _Group] = {}
        install(model)

    def _forward(self, lora: str | None, lengths: list[int] | None = None, **inputs: Any) -> Any:
        import torch

        with self._lock:
            adapters = self._adapters
            if adapters is not None and (lora is not None or adapters.loaded):
                adapters.activate(lora)
            with torch.inference_mode():
                if inputs["input_ids"].shape[0] == 1:
                    return self._model(use_cache=True, **inputs, **self._extra)
                with rows_apart(), row_attention.rows_apart(self._model, lengths or []):
                    return self._model(use_cache=True, **inputs, **self._extra)

    def prefill(self, slot: SequenceSlot) -> Any:
        import torch

        if slot.lora is not None and self._adapters is not None:
            self._adapters.ensure(slot.lora)
        ids = torch.tensor([slot.next_ids], dtype=torch.long, device=self._device)
        out = self._forward(slot.lora, input_ids=ids, **{self._cache_kw: None})
        cache = getattr(out, "cache", None) or out.past_key_values
        group = self._groups.setdefault(slot.lora, _Group())
        group.incoming.append((slot, _cache_layers(cache)))
        slot.state = group
        return out.logits[:, -1, :].to("cpu", torch.float32).clone()

    def decode(self, slots: Sequence[SequenceSlot]) -> Any:
        import torch

        rows: dict[int, Any] = {}
        for lora, group in list(self._groups.items()):
            if group.incoming or group.leaving:
                group.rebuild()
            if not group.slots:
                del self._groups[lora]
                continue
            rows.update(self._decode_group(lora, group))
        return torch.cat([rows[id(slot)] for slot in slots], dim=0)

    def _decode_group(self, lora: str | None, group: _Group) -> dict[int, Any]:
        import torch

        width = group.width
        lengths = [group.lengths[id(slot)] for slot in group.slots]
        ids = torch.tensor(
            [slot.next_ids[-1:] for slot in group.slots], dtype=torch.long, device=self._device
        )
        positions = torch.tensor([[n] for n in lengths], dtype=torch.long, device=self._device)
        inputs: dict[str, Any] = {
            "input_ids": ids,
            "position_ids": positions,
            self._cache_kw: group.cache,
        }
        if any(n < width for n in lengths):
            mask = torch.zeros((len(lengths), width + 1), dtype=torch.long, device=self._device)
            for row, n in enumerate(lengths):
                mask[row, width - n :] = 1
            inputs["attention_mask"] = mask
        out = self._forward(lora, [n + 1 for n in lengths], **inputs)
        group.cache = getattr(out, "cache", None) or out.past_key_values
        for slot in group.slots:
            group.lengths[id(slot)] += 1
        logits = out.logits[:, -1, :].to("cpu", torch.float32).clone()
        return {id(slot): logits[row : row + 1] for row, slot in enumerate(group.slots)}

    def release(self, slot: SequenceSlot) -> None:
        group = slot.state
        slot.state = None
        if not isinstance(group, _Group):
            return
        before = len(group.incoming)
        group.incoming = [(s, layers) for s, layers in group.incoming if s is not slot]
        if len(group.incoming) == before and id(slot) in group.lengths:
            group.leaving.add(id(slot))
        if not group.incoming and len(group.leaving) == len(group.slots):
            group.slots, group.cache, group.leaving = [], None, set()
            group.lengths.clear()
