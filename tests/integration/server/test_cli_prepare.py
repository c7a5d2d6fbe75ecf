"""`cf-llama2 prepare` converts (or finds) the embedded model and prints where it is."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cf_llama2.cli import main

pytestmark = pytest.mark.slow


def test_prepare_prints_the_model_directory() -> None:
    out = io.StringIO()
    assert main(["prepare"], out=out) == 0
    path = Path(out.getvalue().rsplit(" in ", 1)[1].strip())
    assert (path / "config.json").is_file()
