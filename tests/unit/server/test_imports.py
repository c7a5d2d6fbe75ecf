"""Optional dependencies: a clear error without them, and no heavy imports for the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
def test_server_without_its_extra_names_the_extra(missing: str) -> None:
    result = _python(
        "import sys\n"
        f"sys.modules[{missing!r}] = None\n"
        "from cf_llama2.errors import MissingDependencyError\n"
        "try:\n"
        "    import cf_llama2.server\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'cf-llama2[server]'" in result.stdout
    assert missing in result.stdout


def test_cli_import_is_light() -> None:
    result = _python(
        "import sys, cf_llama2.cli\n"
        "names = ('torch', 'transformers', 'starlette', 'uvicorn')\n"
        "print([m for m in names if m in sys.modules])\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
