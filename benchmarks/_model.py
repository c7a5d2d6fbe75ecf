"""Loading the embedded model the way :class:`~cf_llama2.backends.local.LocalBackend` does.

Every local benchmark loads the weights ONCE and hands the same model object to every variant
(raw ``generate``, our backend and adapters, the Hugging Face integrations), so all of them run
the very same weights.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROMPT", "load_embedded"]

PROMPT = "Write a long story about a dragon who learns to cook."
"""A prompt the embedded model answers at length (so every variant generates N tokens)."""


def load_embedded(quantization: str | None = "int8", dtype: Any = None) -> tuple[Any, Any, str]:
    """``(model, tokenizer, directory)`` of the embedded SmolLM2-135M-Instruct.

    Args:
        quantization: ``"int8"`` (the backend's default) or ``None``.
        dtype: dtype of the non-int8 parts (``None``: the backend's default choice).
    """
    from cf_llama2.backends.local import prepare_embedded_model
    from cf_llama2.backends.local.loading import LoadOptions, load_model

    path = str(prepare_embedded_model(progress=False))
    model, tokenizer = load_model(
        path,
        LoadOptions(quantization=quantization, torch_dtype=dtype),  # type: ignore[arg-type]
    )
    return model, tokenizer, path
