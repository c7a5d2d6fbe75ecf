"""Where ``cf-llama2 serve`` takes its token from: flag, file or environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cf_llama2.cli._common import UsageError
from cf_llama2.cli._token import resolve_token


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("  from-file\n")
    source = resolve_token(None, str(path), "from-env")
    assert source is not None
    assert source.value == "from-file"
    assert "from-file" not in repr(source)
    env = resolve_token(None, None, "from-env")
    assert env is not None
    assert env.value == "from-env"
    assert "$CF_LLAMA2_SERVER_TOKEN" in env.curl_header
    assert resolve_token(None, None, "  ") is None
    assert resolve_token(None, None, None) is None


def test_flag_wins_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    source = resolve_token("from-flag", None, "from-env")
    assert source is not None
    assert source.value == "from-flag"
    assert "from-flag" not in source.curl_header
    assert "process list" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "content", "match"),
    [
        ("x", "token", "not both"),
        (None, "", "empty"),
        (None, None, "cannot read"),
    ],
)
def test_bad_token_sources(
    tmp_path: Path, flag: str | None, content: str | None, match: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=match):
        resolve_token(flag, str(path), None)


def test_empty_flag_is_refused() -> None:
    with pytest.raises(UsageError, match="empty"):
        resolve_token(" ", None, None)
