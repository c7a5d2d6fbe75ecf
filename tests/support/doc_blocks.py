"""The fenced code blocks of the documentation site, with the test kind marked above each.

Every ``python`` and ``bash`` block of ``docs/`` is preceded by an HTML comment naming how the
test suite runs it (the comment does not render):

* ``<!-- test: fast -->``: executed as written (scripted backend or a loopback server);
* ``<!-- test: slow -->``: executed as written on the embedded int8 model (``slow`` suite);
* ``<!-- test: credentials -->``: needs real Cloudflare credentials, so it is compiled and its
  imports are checked, but it is not run;
* ``<!-- test: shell -->``: a shell block, checked with ``bash -n`` and its ``cf-llama2``
  options against the command's ``--help``.

``json`` blocks must parse. A block of another language needs no marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
KINDS = ("fast", "slow", "credentials", "shell")
MARKED_LANGUAGES = ("python", "bash")

_FENCE = re.compile(
    r"(?:<!-- test: (?P<kind>[a-z]+) -->\n)?^```(?P<lang>[a-z]*)[^\n]*\n(?P<code>.*?)^```$",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its marker and its code."""

    page: str
    line: int
    language: str
    kind: str | None
    code: str

    @property
    def id(self) -> str:
        """A readable test id: ``page.md:line``."""
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """The Markdown pages of the site."""
    return sorted(DOCS.rglob("*.md"))


def blocks() -> list[Block]:
    """Every fenced block of every page, in page order."""
    found: list[Block] = []
    for path in pages():
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            found.append(
                Block(
                    page=str(path.relative_to(DOCS)),
                    line=text.count("\n", 0, match.start("lang")) + 1,
                    language=match["lang"],
                    kind=match["kind"],
                    code=match["code"],
                )
            )
    return found


def of_kind(kind: str) -> list[Block]:
    """The blocks marked ``kind``."""
    return [b for b in blocks() if b.kind == kind]
