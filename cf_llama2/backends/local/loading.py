"""Loading a Transformers model and tokenizer, in bitsandbytes int8 by default.

The heavy stack (torch, transformers, bitsandbytes) is imported here, on first use, never when
``cf_llama2`` is imported. A missing package raises :class:`MissingDependencyError` naming the
``[local]`` extra.

On CPU the int8 linear layers run with the other parts (embeddings, norms, the head) in
bfloat16: with float32 there bitsandbytes casts every int8 matmul input to float16, which is
slower and logs on every call; bfloat16 is faster than float32 and smaller.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import ConfigurationError, MissingDependencyError, ModelNotFoundError

__all__ = ["LoadOptions", "Quantization", "import_local_stack", "load_model", "resolve_dtype"]

Quantization = Literal["int8"] | None


class _DropNotice(logging.Filter):
    """Drops one known, harmless bitsandbytes notice; every other message passes.

    * ``bitsandbytes.autograd._functions``: "inputs will be cast ... to float16", logged on
      every int8 matmul of a bfloat16 model on CPU (tens of thousands of lines a run).
    * ``bitsandbytes.backends.cpu.ops``: "Failed to load CPU gemm_4bit_forward", logged at
      import when the optional ``kernels`` package is absent; it concerns 4-bit, never used here.
    """

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in str(record.msg)


_NOTICE_FILTERS = {
    "bitsandbytes.autograd._functions": _DropNotice("inputs will be cast"),
    "bitsandbytes.backends.cpu.ops": _DropNotice("Failed to load CPU gemm_4bit_forward"),
}


def _quiet_bitsandbytes_notices() -> None:
    for name, notice in _NOTICE_FILTERS.items():
        logger = logging.getLogger(name)
        if notice not in logger.filters:
            logger.addFilter(notice)


def import_local_stack(purpose: str = "The local backend") -> tuple[Any, Any]:
    """Import ``torch`` and ``transformers``, or raise an error naming the ``[local]`` extra."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "local", purpose) from exc
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("transformers", "local", purpose) from exc
    return torch, transformers


@dataclass(frozen=True)
class LoadOptions:
    """How to load the model; see :class:`~cf_llama2.backends.local.LocalBackend`."""

    quantization: Quantization = "int8"
    device_map: Any = None
    torch_dtype: Any = None
    revision: str | None = None
    local_files_only: bool | None = None
    trust_remote_code: bool = False
    model_kwargs: tuple[tuple[str, Any], ...] = ()


def check_quantization(value: Any) -> Quantization:
    """Validate ``quantization``: ``"int8"`` or ``None`` (``"none"`` is accepted as ``None``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
        return None
    if isinstance(value, str) and value.strip().lower() in ("int8", "8bit", "8-bit"):
        return "int8"
    raise ConfigurationError(
        f"quantization={value!r} is not supported; use 'int8' (bitsandbytes, the default) or "
        "None (the checkpoint's own precision)"
    )


def resolve_dtype(torch: Any, value: Any, *, quantization: Quantization, on_cuda: bool) -> Any:
    """The dtype of the parts that are not int8 (or of the whole model without quantization).

    ``None`` picks bfloat16 on CPU with int8 (see the module docstring), float16 on CUDA, and
    float32 on CPU without quantization. Strings (``"bfloat16"``, ``"float16"``, ``"float32"``,
    ``"auto"``) and ``torch.dtype`` values are accepted.
    """
    if value is None:
        if on_cuda:
            return torch.float16
        return torch.bfloat16 if quantization == "int8" else torch.float32
    if isinstance(value, str):
        name = value.strip().lower().removeprefix("torch.")
        if name == "auto":
            return "auto"
        dtype = getattr(torch, name, None)
        if isinstance(dtype, torch.dtype):
            return dtype
        raise ConfigurationError(
            f"torch_dtype={value!r} is not a torch dtype; use 'bfloat16', 'float16', 'float32' "
            "or 'auto'"
        )
    if isinstance(value, torch.dtype):
        return value
    raise ConfigurationError(
        f"torch_dtype must be a torch.dtype or its name; got {type(value).__name__}"
    )


def load_model(source: str, options: LoadOptions) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local directory or a hub id, ready for inference.

    Raises:
        MissingDependencyError: torch, transformers, bitsandbytes or accelerate is missing.
        ModelNotFoundError: the directory or hub id does not exist (or is not in the local
            cache with ``local_files_only=True``).
        ConfigurationError: an option is invalid.
    """
    torch, transformers = import_local_stack()
    on_cuda = bool(torch.cuda.is_available())
    device_map = options.device_map
    if device_map is None:
        device_map = "auto" if on_cuda else "cpu"
    dtype = resolve_dtype(
        torch, options.torch_dtype, quantization=options.quantization, on_cuda=on_cuda
    )
    common: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    if options.revision is not None:
        common["revision"] = options.revision
    local_only = options.local_files_only
    if local_only is None and os.path.isdir(source):
        local_only = True
    if local_only is not None:
        common["local_files_only"] = local_only
    kwargs: dict[str, Any] = {**common, "dtype": dtype, "device_map": device_map}
    if options.quantization == "int8":
        _quiet_bitsandbytes_notices()
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("bitsandbytes", "local", "int8 quantization") from exc
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
    kwargs.update(dict(options.model_kwargs))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **common)
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except ImportError as exc:
        name = getattr(exc, "name", None) or "accelerate"
        raise MissingDependencyError(name, "local", "Loading a local model") from exc
    except OSError as exc:
        hint = (
            " It is not in the local cache and local_files_only=True; download it first "
            "(huggingface-cli download) or pass a local directory."
            if local_only
            else " Pass a local directory with config.json and weights, or a hub id such as "
            "'meta-llama/Llama-2-7b-chat-hf' (gated: accept the licence and log in)."
        )
        raise ModelNotFoundError(f"cannot load the local model {source!r}: {exc}.{hint}") from exc
    model.eval()
    return model, tokenizer
