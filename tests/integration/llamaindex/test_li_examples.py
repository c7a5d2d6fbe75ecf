"""The LlamaIndex examples run to the end on the embedded model, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [
    pytest.mark.slow,
    # LlamaIndex's workflow runtime inspects agents with inspect.getmembers, touching pydantic's
    # deprecated instance attributes: warnings raised inside llama_index, not by this package.
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_agent_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("llamaindex_agent")
    answer = await example.main("local", "What is the weather in Paris today?")
    out = capsys.readouterr().out
    assert "[calling get_weather(" in out
    assert "[get_weather returned:" in out
    assert answer.strip()


def test_rag_example_retrieves_the_right_document(capsys: pytest.CaptureFixture[str]) -> None:
    example = load("llamaindex_rag")
    answer = example.main("local", "When was the Lumen Bridge opened?")
    out = capsys.readouterr().out
    assert "[source: Lumen Bridge" in out
    assert answer.strip()
