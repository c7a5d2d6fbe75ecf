"""LoRA adapters (PEFT) for the ``lora`` request field: loaded once, cached, switched per step.

Adapters attach to the loaded model through Transformers' PEFT integration
(``model.load_adapter``), each under its own name. A request with ``lora`` activates its
adapter; a request without one runs with adapters disabled. The switch happens under the
backend's step lock right before each forward pass, so concurrent requests with different
adapters interleave safely.

With registered adapters (``LocalBackend(lora_adapters={name: directory})``, what the server
uses) a request may name only those: they are loaded with the model, and any other name is
refused at once, without touching the disk or the network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from ...errors import MissingDependencyError, ModelNotFoundError, WorkersAIErrorDetail

__all__ = ["LoraAdapters", "registered_path"]


def registered_path(lora: str, registered: Mapping[str, str] | None) -> str:
    """The directory of the registered adapter ``lora`` (``lora`` itself when none are registered).

    Raises:
        ModelNotFoundError: adapters are registered and ``lora`` is not one of them (400, 5007).
    """
    if registered is None:
        return lora
    path = registered.get(lora)
    if path is None:
        served = ", ".join(sorted(registered)) or "none"
        message = (
            f"No such LoRA adapter {lora[:100]!r}; registered adapters: {served}. Register "
            "adapters when the backend is made (lora_adapters={name: directory}) or with "
            "cf-llama2 serve --lora NAME=PATH"
        )
        raise ModelNotFoundError(
            message, status_code=400, errors=[WorkersAIErrorDetail(code=5007, message=message)]
        )
    return path


class LoraAdapters:
    """The adapters loaded into one model.

    Args:
        model: the Transformers model.
        local_files_only: do not look up hub ids (``None``: only for local paths).
        registered: ``{name: adapter directory}``; when given, requests may name only these
            names (``None``: any local directory or hub id, the library default).
    """

    def __init__(
        self,
        model: Any,
        *,
        local_files_only: bool | None = None,
        registered: Mapping[str, str] | None = None,
    ) -> None:
        self._model = model
        self._local_files_only = True if registered is not None else local_files_only
        self._registered = dict(registered) if registered is not None else None
        self._names: dict[str, str] = {}
        self._active: str | None = None
        self._enabled = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> list[str]:
        """The adapter paths or ids loaded so far."""
        return list(self._names)

    def load_registered(self) -> None:
        """Load every registered adapter now (so a broken one fails at start, not mid-request).

        Raises:
            MissingDependencyError: ``peft`` is not installed.
            ModelNotFoundError: a registered directory holds no loadable adapter.
        """
        for name in self._registered or {}:
            self.ensure(name)

    def ensure(self, lora: str) -> str:
        """Load ``lora`` (a local PEFT adapter directory or a hub id) once; return its name.

        With registered adapters, ``lora`` is a registered name (anything else is refused
        before any disk or network access).

        Raises:
            MissingDependencyError: ``peft`` is not installed.
            ModelNotFoundError: no adapter at that path or id, or not a registered name.
        """
        source = registered_path(lora, self._registered)
        with self._lock:
            name = self._names.get(lora)
            if name is not None:
                return name
            try:
                import peft  # noqa: F401
            except ImportError as exc:
                raise MissingDependencyError("peft", "local", "The lora request field") from exc
            name = f"cf_llama2_lora_{len(self._names)}"
            if self._local_files_only and not os.path.isdir(source):
                raise ModelNotFoundError(
                    f"lora={lora!r}: {source!r} is not a local directory and the backend loads "
                    "local files only; pass the directory of a PEFT adapter"
                )
            try:
                self._model.load_adapter(source, adapter_name=name)
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
