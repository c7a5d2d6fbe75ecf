"""The lean int8 forward (bit-identical to bitsandbytes') and the model's CPU thread count."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from cf_llama2 import ChatRequest, ConfigurationError
from cf_llama2.backends.local import LocalBackend, int8_cpu
from cf_llama2.backends.local.int8_cpu import (
    install_lean_int8,
    lean_int8_layers,
    remove_lean_int8,
)
from cf_llama2.backends.local.loading import LoadOptions, load_model
from cf_llama2.backends.local.tuning import check_threads, default_threads

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def int8_model(saved_model: Path) -> Any:
    model, _ = load_model(str(saved_model), LoadOptions())
    return model


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 4)
    return ChatRequest(messages=[{"role": "user", "content": "Hi"}], temperature=0, **fields)


def _logits(model: Any, ids: Any) -> tuple[Any, Any]:
    with torch.inference_mode():
        prefill = model(input_ids=ids, use_cache=True)
        step = model(input_ids=ids[:, -1:], cache=prefill.cache)
    return prefill.logits, step.logits


def test_lean_forward_is_bit_identical_on_the_model(int8_model: Any) -> None:
    ids = torch.tensor([[1, 17, 400, 9, 2000, 31, 7]])
    remove_lean_int8(int8_model)
    before = _logits(int8_model, ids)
    assert install_lean_int8(int8_model) == 2 * 7  # every projection of both layers
    after = _logits(int8_model, ids)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_lean_forward_matches_bitsandbytes_with_outliers(
    int8_model: Any, rows: int, dtype: Any
) -> None:
    install_lean_int8(int8_model)
    layer = int8_model.model.layers[0].mlp.down_proj
    generator = torch.Generator().manual_seed(rows)
    x = torch.randn(1, rows, layer.in_features, generator=generator).to(dtype)
    x[0, 0, 3] = 9.0  # above the LLM.int8() threshold: an outlier column
    x[0, -1, 11] = -7.5
    with torch.inference_mode():
        ours = layer(x)
        theirs = layer._lean_fallback(x)
    assert ours.dtype == theirs.dtype == dtype
    assert torch.equal(ours, theirs)


def test_siblings_quantize_a_shared_input_once(
    int8_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_lean_int8(int8_model)
    for layer in lean_int8_layers(int8_model):  # the Python path (not the compiled kernel's)
        monkeypatch.setattr(layer, "_lean_linear", None)
    calls = []
    real = int8_cpu._quantize
    monkeypatch.setattr(
        int8_cpu,
        "_quantize",
        lambda *a: calls.append(1) or real(*a),  # type: ignore[func-returns-value]
    )
    attention = int8_model.model.layers[0].self_attn
    x = torch.randn(1, 1, attention.q_proj.in_features, dtype=torch.bfloat16)
    with torch.inference_mode():
        for proj in (attention.q_proj, attention.k_proj, attention.v_proj):
            proj(x)
        attention.q_proj(x.clone())
    assert len(calls) == 2
    _logits(int8_model, torch.tensor([[1, 2, 3]]))  # a whole forward pass ends...
    assert all(m._lean_shared.source is None for m in lean_int8_layers(int8_model))  # ...empty


def test_training_and_autograd_use_bitsandbytes(int8_model: Any) -> None:
    install_lean_int8(int8_model)
    layer = int8_model.model.layers[0].self_attn.o_proj
    x = torch.randn(1, 2, layer.in_features, dtype=torch.bfloat16, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert x.grad is not None


def test_remove_restores_the_bitsandbytes_forward(int8_model: Any) -> None:
    install_lean_int8(int8_model)
    count = len(lean_int8_layers(int8_model))
    assert remove_lean_int8(int8_model) == count
    assert not lean_int8_layers(int8_model)
    assert all(
        getattr(m.forward, "__func__", None) is not int8_cpu._lean_forward
        for m in int8_model.modules()
    )
    install_lean_int8(int8_model)


def test_backend_options_select_the_forward(saved_model: Path) -> None:
    lean = LocalBackend(str(saved_model)).load()
    plain = LocalBackend(str(saved_model), lean_int8=False).load()
    try:
        assert len(lean_int8_layers(lean._model)) == 14
        assert not lean_int8_layers(plain._model)
        assert lean.run(chat()).response == plain.run(chat()).response
    finally:
        lean.close()
        plain.close()


def test_thread_count_is_checked() -> None:
    assert check_threads(None) is None
    assert check_threads(0) == 0
    assert check_threads(3) == 3
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigurationError, match="num_threads"):
            LocalBackend(num_threads=bad)


def test_small_models_default_to_one_thread(tiny_model: Any) -> None:
    assert default_threads(tiny_model) == 1


@pytest.mark.parametrize("requested", [None, 2])
def test_threads_are_set_in_the_thread_that_runs_the_model(
    tiny_model: Any, tokenizer: Any, requested: int | None
) -> None:
    seen: list[int] = []
    handle = tiny_model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    backend = LocalBackend(tiny_model, tokenizer=tokenizer, num_threads=requested)
    main_threads = torch.get_num_threads()
    try:
        worker = threading.Thread(target=backend.run, args=(chat(),))
        worker.start()
        worker.join()
        backend.run(chat())
    finally:
        handle.remove()
        backend.close()
        torch.set_num_threads(main_threads)
    want = requested or 1
    assert backend.threads == want
    assert seen
    assert all(n == want for n in seen)


def test_zero_threads_leaves_torch_alone(tiny_model: Any, tokenizer: Any) -> None:
    before = torch.get_num_threads()
    backend = LocalBackend(tiny_model, tokenizer=tokenizer, num_threads=0)
    try:
        backend.run(chat())
    finally:
        backend.close()
    assert backend.threads == 0
    assert torch.get_num_threads() == before
