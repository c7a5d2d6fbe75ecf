"""Registered LoRA adapters: loaded with the model; any other name is refused without I/O."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from cf_llama2 import ChatRequest, ModelNotFoundError
from cf_llama2.backends.local import LocalBackend
from cf_llama2.backends.local import lora as lora_module


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(
        messages=[{"role": "user", "content": "Hi"}], temperature=0, max_tokens=6, **fields
    )


@pytest.fixture(scope="module")
def adapter_dir(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
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
    path = tmp_path_factory.mktemp("lora") / "adapter"
    peft_model.save_pretrained(str(path))
    return path


def test_registered_adapter_is_loaded_at_start_and_served_by_name(
    tiny_model: Any, tokenizer: Any, adapter_dir: Path
) -> None:
    backend = LocalBackend(
        copy.deepcopy(tiny_model), tokenizer=tokenizer, lora_adapters={"style": str(adapter_dir)}
    ).load()
    assert backend._adapters is not None
    assert backend._adapters.loaded == ["style"]
    base = backend.run(chat()).response
    adapted = backend.run(chat(lora="style")).response
    assert adapted != base
    assert backend.run(chat()).response == base


def test_unregistered_names_touch_no_disk_and_no_hub(
    tiny_model: Any, tokenizer: Any, adapter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(
        copy.deepcopy(tiny_model), tokenizer=tokenizer, lora_adapters={"style": str(adapter_dir)}
    ).load()
    looked_up: list[str] = []
    monkeypatch.setattr(lora_module.os.path, "isdir", lambda p: looked_up.append(p) or True)
    monkeypatch.setattr(
        backend._model, "load_adapter", lambda *a, **k: looked_up.append(str(a)), raising=False
    )
    for name in (str(adapter_dir), "some-org/some-adapter", "../../etc"):
        with pytest.raises(ModelNotFoundError, match="registered adapters: style") as error:
            backend.run(chat(lora=name))
        assert error.value.status_code == 400
        assert error.value.codes == [5007]
    assert looked_up == []


def test_broken_registered_adapter_fails_at_load(
    tiny_model: Any, tokenizer: Any, tmp_path: Path
) -> None:
    backend = LocalBackend(
        copy.deepcopy(tiny_model), tokenizer=tokenizer, lora_adapters={"x": str(tmp_path / "no")}
    )
    with pytest.raises(ModelNotFoundError, match="not a local directory"):
        backend.load()
