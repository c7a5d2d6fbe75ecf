"""The site's code blocks marked ``slow`` run as written, on the embedded int8 model."""

from __future__ import annotations

import pytest

from tests.support.doc_blocks import Block, of_kind

SLOW = of_kind("slow")

pytestmark = [
    pytest.mark.slow,
    # LlamaIndex's own agent workflow code warns about pydantic and workflow deprecations.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_the_site_has_local_model_examples() -> None:
    assert SLOW


@pytest.mark.parametrize("block", SLOW, ids=[b.id for b in SLOW])
def test_slow_block_runs(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_block_{block.line}"}
    exec(compile(block.code, block.id, "exec"), namespace)
    if "print(" in block.code:
        assert capsys.readouterr().out.strip(), "the block prints something"


def test_the_blocks_share_one_loaded_model(
    shared_loaded_models: dict[tuple[str, str], tuple[object, object]],
) -> None:
    pytest.importorskip("bitsandbytes")
    from cf_llama2.backends.local import LocalBackend

    first, second = LocalBackend().load(), LocalBackend().load()
    try:
        assert first._model is second._model
        assert any(model is first._model for model, _ in shared_loaded_models.values())
    finally:
        first.close()
        second.close()
