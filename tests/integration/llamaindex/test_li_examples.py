"""The LlamaIndex examples run to the end on the embedded model, offline."""

from __future__ import annotations

import pytest

from tests.support.common import LLAMAINDEX_WARNINGS, load_example

pytestmark = [
    pytest.mark.slow,
    *LLAMAINDEX_WARNINGS,
]


async def test_agent_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("llamaindex_agent")
    answer = await example.main("local", "What is the weather in Paris today?")
    out = capsys.readouterr().out
    assert "[calling get_weather(" in out
    assert "[get_weather returned:" in out
    assert answer.strip()


def test_rag_example_retrieves_the_right_document(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("llamaindex_rag")
    answer = example.main("local", "When was the Lumen Bridge opened?")
    out = capsys.readouterr().out
    assert "[source: Lumen Bridge" in out
    assert answer.strip()
