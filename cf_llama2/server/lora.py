"""Which LoRA adapters a request may name: only those registered when the server started."""

from __future__ import annotations

from collections.abc import Collection

from ..errors import ConfigurationError, ModelNotFoundError, WorkersAIErrorDetail

__all__ = ["LoraPolicy"]


class LoraPolicy:
    """The adapter names clients may ask for with the ``lora`` field.

    The check is a set lookup: a name that was not registered is refused at once, before the
    backend sees the request, so a client can never make the server read a path or contact the
    network by naming an adapter.

    Args:
        names: the registered adapter names (``cf-llama2 serve --lora NAME=PATH``).

    Raises:
        ConfigurationError: a name that is not a non-empty string.
    """

    def __init__(self, names: Collection[str] = ()) -> None:
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ConfigurationError(
                    f"LoRA adapter names must be non-empty strings; got {name!r}"
                )
        self._names = frozenset(names)

    @property
    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._names)

    def check(self, lora: str | None) -> None:
        """Pass when ``lora`` is ``None`` or registered.

        Raises:
            ModelNotFoundError: any other name (HTTP 400, code 5007).
        """
        if lora is None or lora in self._names:
            return
        served = ", ".join(self.names) if self._names else "none"
        message = (
            f"No such LoRA adapter {lora[:100]!r}; this server serves these adapters: {served}. "
            "Adapters are registered when the server starts (cf-llama2 serve --lora NAME=PATH)"
        )
        raise ModelNotFoundError(
            message, status_code=400, errors=[WorkersAIErrorDetail(code=5007, message=message)]
        )
