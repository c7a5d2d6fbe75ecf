"""What both integration suites share: sampling settings and the competence xfails.

Both suites run on the embedded SmolLM2-135M (directly, or behind the Workers-AI-format server).
Forced tool calls and structured output are grammar constrained there, so they are always well
formed; the xfails below are the tests that need the model to understand the prompt.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

# Greedy and deterministic; the repetition penalty keeps the small model out of the loops that
# would otherwise run a structured answer into max_tokens.
SAMPLING: dict[str, Any] = {"temperature": 0, "max_tokens": 160, "repetition_penalty": 1.2}


class SmallModelSuite(ChatModelIntegrationTests):
    """The integration suite with every feature on, and the competence xfails."""

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
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason="competence: with tool_choice=None the 135M model answers in prose instead of "
        "choosing to call the tool (forced calls are covered by test_tool_choice)",
        strict=False,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason="competence: the forced call is well formed, but the 135M model does not copy "
        "the 3 from 'magic_function(3)' into the arguments",
        strict=False,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(
        reason="competence: the forced call is well formed, but the 135M model does not copy "
        "the 3 from 'magic_function(3)' into the arguments",
        strict=False,
    )
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(
        reason="competence: the forced call is well formed, but the 135M model does not copy "
        "the CJK company name from the prompt into customer_name",
        strict=False,
    )
    def test_unicode_tool_call_integration(
        self,
        model: BaseChatModel,
        *,
        tool_choice: str | None = None,
        force_tool_call: bool = True,
    ) -> None:
        super().test_unicode_tool_call_integration(
            model, tool_choice=tool_choice, force_tool_call=force_tool_call
        )

    @pytest.mark.xfail(
        reason="competence: json_mode constrains the answer to some JSON object only; the 135M "
        "model does not pick the 'setup'/'punchline' keys the prompt asks for",
        strict=False,
    )
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)
