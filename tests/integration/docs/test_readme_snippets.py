"""Every Python block of the README runs as written, on the embedded int8 model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)

pytestmark = [
    pytest.mark.slow,
    # LlamaIndex's own agent workflow code warns about pydantic and workflow deprecations.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), namespace)
    out = capsys.readouterr().out
    if "print(" in BLOCKS[index]:
        assert out.strip(), "the block prints something"
