"""langchain-tests' chat-model integration suite on the remote backend (Workers AI over HTTP).

The remote backend talks to a local server that speaks the Workers AI format (``cf_llama2.server``
in a background thread, on the embedded int8 model), so the whole HTTP path runs: request body,
the ``cf-llama2-options`` header, SSE streaming, tool-call and usage events, errors. The
competence xfails (and why each is one) are in ``_small_model.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from langchain_cf_llama2 import ChatCloudflareLlama2

from ._small_model import SAMPLING, SmallModelSuite

pytestmark = pytest.mark.slow

TOKEN = "local-test-token"
_server: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def workers_ai_server() -> Iterator[str]:
    from cf_llama2.backends.factory import default_local_backend
    from cf_llama2.server import serve_in_thread

    with serve_in_thread(default_local_backend(), api_token=TOKEN) as server:
        _server["base_url"] = server.base_url
        yield server.base_url
    _server.clear()


class TestChatCloudflareLlama2Remote(SmallModelSuite):
    @property
    def chat_model_class(self) -> type[ChatCloudflareLlama2]:
        return ChatCloudflareLlama2

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "backend": "remote",
            "base_url": _server["base_url"],
            "account_id": "local",
            "api_token": TOKEN,
            "max_retries": 0,
            # CPU generation on a busy machine can take minutes; a timeout here would hide the
            # answer the test is about.
            "timeout": 600,
            **SAMPLING,
        }
