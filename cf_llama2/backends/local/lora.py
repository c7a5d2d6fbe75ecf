"""LoRA adapters (PEFT) for the ``lora`` request field: loaded once, cached, switched per step.

Adapters attach to the loaded model through Transformers' PEFT integration
(``model.load_adapter``), each under its own name. A request with ``lora`` activates its
adapter; a request without one runs with adapters disabled. The switch happens under the
backend's step lock right before each forward pass, so concurrent requests with different
adapters interleave safely.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ...errors import MissingDependencyError, ModelNotFoundError

__all__ = ["LoraAdapters"]


class LoraAdapters:
    """The adapters loaded into one model.

    Args:
        model: the Transformers model.
        local_files_only: do not look up hub ids (``None``: only for local paths).
    """

    def __init__(self, model: Any, *, local_files_only: bool | None = None) -> None:
        self._model = model
        self._local_files_only = local_files_only
        self._names: dict[str, str] = {}
        self._active: str | None = None
        self._enabled = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> list[str]:
        """The adapter paths or ids loaded so far."""
        return list(self._names)

    def ensure(self, lora: str) -> str:
        """Load ``lora`` (a local PEFT adapter directory or a hub id) once; return its name.

        Raises:
            MissingDependencyError: ``peft`` is not installed.
            ModelNotFoundError: no adapter at that path or id.
        """
        with self._lock:
            name = self._names.get(lora)
            if name is not None:
                return name
            try:
                import peft  # noqa: F401
            except ImportError as exc:
                raise MissingDependencyError("peft", "local", "The lora request field") from exc
            name = f"cf_llama2_lora_{len(self._names)}"
            if self._local_files_only and not os.path.isdir(lora):
                raise ModelNotFoundError(
                    f"lora={lora!r} is not a local directory and the backend was created with "
                    "local_files_only=True; pass the directory of a PEFT adapter"
                )
            try:
                self._model.load_adapter(lora, adapter_name=name)
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(
                    f"lora={lora!r}: cannot load this LoRA adapter ({exc}). Pass the directory "
                    "of a PEFT adapter (adapter_config.json + adapter_model.safetensors) made "
                    "for this base model."
                ) from exc
            self._names[lora] = name
            # A freshly loaded adapter becomes active; keep the base model the default.
            self._active = name
            self._enabled = True
            return name

    def _layers(self) -> list[Any]:
        from peft.tuners.tuners_utils import BaseTunerLayer

        return [m for m in self._model.modules() if isinstance(m, BaseTunerLayer)]

    def activate(self, lora: str | None) -> None:
        """Make ``lora`` (or no adapter) the one the next forward pass uses.

        The switch is done on PEFT's tuner layers directly (what ``model.set_adapter`` and
        ``model.disable_adapters`` do), which works across the PEFT versions the extra allows.
        """
        if lora is None:
            if self._enabled:
                for layer in self._layers():
                    layer.enable_adapters(False)
                self._enabled = False
            return
        name = self.ensure(lora)
        if self._active != name or not self._enabled:
            for layer in self._layers():
                layer.enable_adapters(True)
                layer.set_adapter(name)
            self._active = name
            self._enabled = True
