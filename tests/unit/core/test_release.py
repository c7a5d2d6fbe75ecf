"""Release metadata: one version for the three packages, the licence file and the changelog."""

from __future__ import annotations

import sys
from pathlib import Path

import cf_llama2
import langchain_cf_llama2
import llamaindex_cf_llama2

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_three_packages_report_one_version() -> None:
    assert cf_llama2.__version__
    assert langchain_cf_llama2.__version__ == cf_llama2.__version__
    assert llamaindex_cf_llama2.__version__ == cf_llama2.__version__


def test_the_version_is_declared_once_in_the_core_package() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "cf_llama2/__init__.py"


def test_the_declared_licence_has_its_file() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_the_changelog_has_unreleased_and_the_current_version() -> None:
    headings = [
        line
        for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    ]
    assert headings[0] == "## Unreleased"
    assert any(h.startswith(f"## {cf_llama2.__version__} - ") for h in headings), headings


def test_the_dev_extra_has_the_packaging_tools() -> None:
    dev = " ".join(PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert "build" in dev
    assert "twine" in dev


def test_ci_checks_the_built_packages_after_the_tests() -> None:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    package_check = next(i for i, line in enumerate(lines) if line.startswith(".ci/package-check"))
    tests = next(i for i, line in enumerate(lines) if "python -m pytest" in line)
    assert package_check > tests
    assert "exit 1" in lines[package_check]
