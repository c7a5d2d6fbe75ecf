"""langchain-tests' chat-model unit suite on ChatCloudflareLlama2 (no network, no model)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_cf_llama2 import ChatCloudflareLlama2


class TestChatCloudflareLlama2Unit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatCloudflareLlama2]:
        return ChatCloudflareLlama2

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"account_id": "test-account", "api_token": "test-token"}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"CLOUDFLARE_API_TOKEN": "env-token", "CLOUDFLARE_ACCOUNT_ID": "env-account"},
            {},
            {"api_token": "env-token", "account_id": "env-account"},
        )
