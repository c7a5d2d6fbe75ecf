"""A Workers AI-compatible HTTP server on any backend (usually the local int8 model).

Any Workers AI client (our remote backend, curl, other languages' SDKs) can talk to it unchanged:
``POST /client/v4/accounts/{account_id}/ai/run/{model}`` with the same bodies, envelopes, SSE
streams and error codes as the hosted API. Like Workers AI, it also serves OpenAI-compatible
``.../ai/v1/chat/completions`` and ``.../ai/v1/models`` (and the same under ``/v1/``), so OpenAI
clients work by changing their base URL (see :mod:`cf_llama2.server.openai`).

Example:
    >>> from cf_llama2.backends import LocalBackend, RemoteBackend
    >>> from cf_llama2.server import serve_in_thread
    >>> with serve_in_thread(LocalBackend(), api_token="secret") as server:  # doctest: +SKIP
    ...     remote = RemoteBackend("local", "secret", base_url=server.base_url)
    ...     print(remote.run({"prompt": "Hello"}).response)

From the command line: ``cf-llama2 serve`` (see :mod:`cf_llama2.cli`).

Needs the ``server`` extra (``pip install 'cf-llama2[server]'``: Starlette and uvicorn).
"""

from __future__ import annotations

import importlib.util

from ..errors import MissingDependencyError

for _package in ("starlette", "uvicorn"):
    if importlib.util.find_spec(_package) is None:
        raise MissingDependencyError(_package, "server", "cf_llama2.server (the local HTTP server)")

from .app import DEFAULT_MAX_BODY_BYTES, create_app  # noqa: E402
from .background import ServerHandle, bind_socket, serve_in_thread  # noqa: E402
from .queue import AdmissionQueue  # noqa: E402

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AdmissionQueue",
    "ServerHandle",
    "bind_socket",
    "create_app",
    "serve_in_thread",
]
