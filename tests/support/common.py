"""Helpers several test modules share: loading an example script, LlamaIndex warning filters."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["EXAMPLES", "LLAMAINDEX_WARNINGS", "LLAMAINDEX_WORKFLOW_WARNINGS", "load_example"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

LLAMAINDEX_WARNINGS = [
    # LlamaIndex's workflow runtime inspects agents with inspect.getmembers, touching pydantic's
    # deprecated instance attributes: warnings raised inside llama_index, not by this package.
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]
LLAMAINDEX_WORKFLOW_WARNINGS = [
    *LLAMAINDEX_WARNINGS,
    # ReActAgent reads the deprecated Context.is_running (inside llama_index).
    pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning"),
]


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
