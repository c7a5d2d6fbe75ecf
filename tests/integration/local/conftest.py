"""The embedded int8 model, loaded once for the slow tests (converted into the cache if needed)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def embedded_backend() -> Any:
    pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    from cf_llama2.backends.local import LocalBackend

    backend = LocalBackend().load()
    yield backend
    backend.close()
