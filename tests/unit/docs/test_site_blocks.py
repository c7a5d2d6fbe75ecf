"""Every code block of the documentation site is marked, and the fast ones run as written."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.doc_blocks import KINDS, MARKED_LANGUAGES, ROOT, Block, blocks, of_kind

pytestmark = [
    # LlamaIndex's own agent workflow code warns about pydantic and workflow deprecations.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ALL = blocks()


def _ids(items: list[Block]) -> list[str]:
    return [b.id for b in items]


def test_the_site_has_blocks_of_every_kind() -> None:
    kinds = {b.kind for b in ALL}
    assert set(KINDS) <= kinds, kinds


@pytest.mark.parametrize("block", ALL, ids=_ids(ALL))
def test_every_code_block_is_marked_or_parses(block: Block) -> None:
    if block.language == "python":
        assert block.kind in ("fast", "slow", "credentials"), f"{block.id}: mark the block"
    elif block.language == "bash":
        assert block.kind == "shell", f"{block.id}: mark the block <!-- test: shell -->"
    elif block.language == "json":
        json.loads(block.code)
    else:
        assert block.language not in MARKED_LANGUAGES
        assert block.language, f"{block.id}: name the block's language (text, json, ...)"


@pytest.mark.parametrize("block", of_kind("fast"), ids=_ids(of_kind("fast")))
def test_fast_block_runs(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_block_{block.line}"}
    try:
        exec(compile(block.code, block.id, "exec"), namespace)
    finally:
        if "Settings.llm =" in block.code:  # LlamaIndex's global: leave it as it was found
            from llama_index.core import Settings

            Settings._llm = None
    if "print(" in block.code:
        assert capsys.readouterr().out.strip(), "the block prints something"


def _imported_names(code: str) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            pairs += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            pairs += [(node.module, alias.name) for alias in node.names]
    return pairs


CREDENTIALS = of_kind("credentials")


@pytest.mark.parametrize("block", CREDENTIALS, ids=_ids(CREDENTIALS))
def test_credentials_block_compiles_and_its_imports_exist(block: Block) -> None:
    compile(block.code, block.id, "exec")
    pairs = _imported_names(block.code)
    assert pairs, f"{block.id}: a credentials block imports what it uses"
    for module_name, name in pairs:
        module = importlib.import_module(module_name)
        if name is not None:
            assert hasattr(module, name) or importlib.util.find_spec(f"{module_name}.{name}"), (
                f"{block.id}: {module_name} has no {name}"
            )


SHELL = of_kind("shell")


def _cf_llama2_help(args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cf_llama2.cli", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_block_parses_and_uses_real_options(block: Block) -> None:
    subprocess.run(["bash", "-n"], input=block.code, text=True, check=True, timeout=30)
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "cf-llama2":
            continue
        command = [w for w in words[1:2] if not w.startswith("-")]
        help_text = _cf_llama2_help(command)
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert option in help_text, f"{block.id}: cf-llama2 {command} has no {option}"


def test_the_quick_start_shows_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(python3 -m venv[^\n]+)\n```", readme)[:2]
    quick = [b.code.strip() for b in SHELL if b.page == "quickstart.md"]
    assert commands
    for command in commands:
        assert command in quick


def test_every_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, re.M))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == listed


def test_the_readme_links_to_the_site_pages() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[\w/.-]+\.md)\)", readme))
    for page in ("quickstart", "langchain", "llamaindex", "backends", "server", "errors"):
        assert f"docs/{page}.md" in linked, page
    for link in linked:
        assert (ROOT / link).is_file(), link


def test_ci_builds_the_site_strictly_after_installing_the_docs_extra() -> None:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    install = next(i for i, line in enumerate(lines) if ".[docs]" in line)
    build = next(i for i, line in enumerate(lines) if "mkdocs build --strict" in line)
    assert install <= build
    assert "exit 1" in lines[build]


def test_the_docs_extra_has_the_site_tools() -> None:
    text = Path(ROOT / "pyproject.toml").read_text(encoding="utf-8")
    extra = re.search(r"^docs = \[(.*?)\]", text, re.S | re.M)
    assert extra is not None
    for package in ("mkdocs", "mkdocs-material", "mkdocstrings"):
        assert f'"{package}' in extra[1], package
