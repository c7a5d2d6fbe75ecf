"""Checks what the sdist and the wheel contain: what must ship is there, what must not is not.

Usage: python .ci/artifact_contents.py DIST.tar.gz DIST.whl
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import PurePosixPath

PACKAGES = ("cf_llama2", "langchain_cf_llama2", "llamaindex_cf_llama2")

# A distributor rebuilds and tests from the sdist: sources, tests, docs and the files they read.
SDIST_REQUIRED = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    ".ci/run",
    "tests/integration/local/conftest.py",
    "tests/support/workers_ai_fake.py",
    "tests/unit/core/test_readme.py",
    "examples/langchain_agent.py",
    "benchmarks/report.py",
    "docs/benchmarks.md",
    "docs/index.md",
    "mkdocs.yml",
    *(f"{package}/__init__.py" for package in PACKAGES),
    *(f"{package}/py.typed" for package in PACKAGES),
)
# Caches, build output, environments, secrets and the benchmarks' raw result files never ship.
FORBIDDEN_PARTS = {
    "__pycache__",
    ".venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".cache",
    ".git",
    "dist",
    "build",
    "site",
}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".env", ".whl", ".tar.gz", ".safetensors")
FORBIDDEN_PREFIXES = ("docs/benchmarks/results/",)


def _problems(names: list[str], required: tuple[str, ...]) -> list[str]:
    problems = [f"missing: {name}" for name in required if name not in names]
    for name in names:
        path = PurePosixPath(name)
        if FORBIDDEN_PARTS.intersection(path.parts[:-1]) or name.endswith(FORBIDDEN_SUFFIXES):
            problems.append(f"must not ship: {name}")
        elif name.startswith(FORBIDDEN_PREFIXES):
            problems.append(f"must not ship (benchmark result file): {name}")
    return problems


def check_sdist(path: str) -> list[str]:
    """Problems with the sdist at ``path`` (names are taken relative to its top folder)."""
    with tarfile.open(path) as archive:
        names = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()]
    return _problems(names, SDIST_REQUIRED)


def check_wheel(path: str) -> list[str]:
    """Problems with the wheel at ``path``: the three packages, py.typed, the licence, no tests."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    required = (
        *(f"{package}/__init__.py" for package in PACKAGES),
        *(f"{package}/py.typed" for package in PACKAGES),
        "cf_llama2/cli/__main__.py",
        "cf_llama2/server/app.py",
        f"{dist_info}/licenses/LICENSE",
        f"{dist_info}/entry_points.txt",
    )
    problems = _problems(names, required)
    tops = {n.split("/")[0] for n in names} - {dist_info, *PACKAGES}
    problems += [f"unexpected top-level entry in the wheel: {top}" for top in sorted(tops)]
    with zipfile.ZipFile(path) as archive:
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    for line in ("License-Expression: MIT", "License-File: LICENSE"):
        if line not in metadata.splitlines():
            problems.append(f"wheel METADATA lacks {line!r}")
    return problems


def main(argv: list[str]) -> int:
    sdist, wheel = argv
    problems = [f"{sdist}: {p}" for p in check_sdist(sdist)]
    problems += [f"{wheel}: {p}" for p in check_wheel(wheel)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("sdist and wheel contents: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
