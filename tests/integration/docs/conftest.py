"""The documentation's model examples share one loaded model per set of load options.

Each block builds its own backend as a reader would (``LocalBackend()``,
``ChatCloudflareLlama2(backend="local")``); only the weights are loaded once per session, by
remembering what ``load_model`` returned for the same source and options. A backend applies its
own tuning (threads, LoRA) to the model it gets, so blocks stay independent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_loaded_models() -> Iterator[dict[tuple[str, str], tuple[Any, Any]]]:
    """Patch the local backend's ``load_model`` with a per-session memo; yields the memo."""
    from cf_llama2.backends.local import backend as local_backend

    load = local_backend.load_model
    loaded: dict[tuple[str, str], tuple[Any, Any]] = {}

    def load_once(source: str, options: Any) -> tuple[Any, Any]:
        key = (source, repr(options))
        if key not in loaded:
            loaded[key] = load(source, options)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_backend, "load_model", load_once)
        yield loaded
    loaded.clear()
