"""langchain-tests' chat-model integration suite on the embedded int8 model (backend="local").

Tool calling, tool choice, structured output, JSON mode and usage metadata are all on; the
competence xfails (and why each is one) are in ``_small_model.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_cf_llama2 import ChatCloudflareLlama2

from ._small_model import SAMPLING, SmallModelSuite

pytestmark = pytest.mark.slow


class TestChatCloudflareLlama2Local(SmallModelSuite):
    @property
    def chat_model_class(self) -> type[ChatCloudflareLlama2]:
        return ChatCloudflareLlama2

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"backend": "local", **SAMPLING}
