"""Sampling, grammar, detokenization and chat formatting, one piece at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
import torch

from cf_llama2 import ChatRequest, PromptRequest, RequestValidationError, Tool
from cf_llama2.backends.local.chat_format import render_prompt, render_text
from cf_llama2.backends.local.detokenize import IncrementalDecoder
from cf_llama2.backends.local.grammar import (
    GrammarLogitsProcessor,
    build_matcher,
    ll_tokenizer,
    response_format_schema,
    tool_call_schema,
)
from cf_llama2.backends.local.sampling import FrequencyPresencePenalty, make_sampler
from cf_llama2.prompt import flatten_messages, llama2_chat_prompt
from cf_llama2.schema import SamplingParams

TOOL = Tool(
    name="get_weather",
    description="Weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)


# -- sampling ------------------------------------------------------------------------------------
def test_frequency_and_presence_penalties_count_generated_tokens_only() -> None:
    ids = torch.tensor([[5, 5, 1, 1, 1, 2]])  # prompt: 5, 5
    scores = torch.zeros((1, 8))
    out = FrequencyPresencePenalty(0.5, 1.0, prompt_length=2)(ids, scores)
    assert out[0, 1].item() == pytest.approx(-(0.5 * 3 + 1.0))
    assert out[0, 2].item() == pytest.approx(-(0.5 + 1.0))
    assert out[0, 5].item() == 0.0  # only in the prompt
    assert out[0, 7].item() == 0.0


def test_sampler_is_greedy_for_zero_temperature_and_seeded_otherwise() -> None:
    assert make_sampler(SamplingParams(temperature=0), prompt_length=0).greedy
    assert make_sampler(SamplingParams(temperature=1, top_k=1), prompt_length=0).greedy
    scores = torch.randn((1, 50), generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[1]])

    def draws(seed: int) -> list[int]:
        sampler = make_sampler(
            SamplingParams(temperature=1.5, top_p=0.9, seed=seed), prompt_length=1
        )
        assert not sampler.greedy
        assert len(sampler.warpers) == 2
        return [sampler.pick(ids, scores.clone()) for _ in range(20)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_top_k_keeps_only_the_best_tokens() -> None:
    scores = torch.arange(10, dtype=torch.float32).unsqueeze(0)
    sampler = make_sampler(SamplingParams(temperature=1, top_k=2, seed=1), prompt_length=0)
    picks = {sampler.pick(torch.tensor([[0]]), scores.clone()) for _ in range(50)}
    assert picks <= {8, 9}


# -- grammar -------------------------------------------------------------------------------------
def test_tool_call_schema_closes_both_objects() -> None:
    schema = tool_call_schema([TOOL])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["name"] == {"const": "get_weather"}
    assert schema["properties"]["arguments"]["additionalProperties"] is False
    other = Tool(name="other")
    both = tool_call_schema([TOOL, other], many=True)
    assert both["type"] == "array"
    assert [v["properties"]["name"]["const"] for v in both["items"]["anyOf"]] == [
        "get_weather",
        "other",
    ]
    jsonschema.validate({"name": "other", "arguments": {}}, both["items"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "other", "arguments": {"x": 1}}, both["items"])


def test_response_format_schema_accepts_bare_and_wrapped_schemas() -> None:
    bare = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert response_format_schema("json_schema", bare) == bare
    assert response_format_schema("json_schema", {"name": "x", "schema": bare}) == bare
    assert response_format_schema("json_object", None) == {"type": "object"}


def test_processor_masks_every_token_that_breaks_the_json(tokenizer: Any) -> None:
    vocab = ll_tokenizer(tokenizer).vocab_size
    processor = GrammarLogitsProcessor(
        build_matcher(tokenizer, tool_call_schema([TOOL]), field="tools"), vocab
    )
    text = '{"name":"get_weather","arguments":{"city":"Oslo"}}'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompt = [1, 2, 3]
    for k, token in enumerate(ids):
        context = torch.tensor([prompt + ids[:k]])
        scores = processor(context, torch.zeros((1, vocab)))
        allowed = torch.isfinite(scores[0])
        assert allowed[token], f"token {k} of a valid call was masked"
        assert not allowed.all()
    processor(torch.tensor([prompt + ids]), torch.zeros((1, vocab)))
    assert processor.done
    # Only EOS may follow a complete call.
    final = processor.mask(torch.zeros((1, vocab)))
    assert torch.isfinite(final[0]).nonzero().flatten().tolist() == [tokenizer.eos_token_id]


def test_processor_extends_the_mask_past_the_tokenizer_vocab(tokenizer: Any) -> None:
    vocab = ll_tokenizer(tokenizer).vocab_size
    processor = GrammarLogitsProcessor(
        build_matcher(tokenizer, {"type": "object"}, field="f"), vocab
    )
    scores = processor.mask(torch.zeros((1, vocab + 64)))
    assert not torch.isfinite(scores[0, vocab:]).any()


def test_unsupported_schema_names_the_field(tokenizer: Any) -> None:
    with pytest.raises(RequestValidationError) as info:
        build_matcher(
            tokenizer,
            {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
            field="response_format.json_schema",
        )
    assert info.value.field == "response_format.json_schema"


# -- detokenization ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["Hello world, how are you?", "Zürich ☀️ 25°C — 東京 🚀", "  two  spaces\n\nnew"]
)
def test_incremental_decoding_equals_full_decoding(tokenizer: Any, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.add(i) for i in ids] + [decoder.flush()]
    assert "".join(deltas) == tokenizer.decode(ids, skip_special_tokens=True) == text
    assert all("\ufffd" not in d for d in deltas)


def test_flush_drops_the_bytes_of_an_unfinished_character(tokenizer: Any) -> None:
    ids = tokenizer("ok 🚀", add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    text = "".join(decoder.add(i) for i in ids[:-1]) + decoder.flush()
    cut = tokenizer.decode(ids[:-1])
    assert cut.endswith("\ufffd")
    assert text == cut.rstrip("\ufffd")
    assert text.startswith("ok")
    assert decoder.flush() == ""


# -- chat formatting -----------------------------------------------------------------------------
def test_chat_template_is_used_when_the_tokenizer_has_one(tokenizer: Any) -> None:
    request = ChatRequest(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    text = render_text(request, tokenizer)
    assert text == tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text.endswith("<|im_start|>assistant\n")


def test_llama2_format_is_the_reference_string(tokenizer: Any) -> None:
    request = ChatRequest(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ]
    )
    text = render_text(request, tokenizer, "llama2")
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    assert text == (
        f"{bos}[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! {eos}"
        f"{bos}[INST] Bye [/INST]"
    )


class _RefusingTemplate:
    """A tokenizer whose template refuses the conversation, like Llama-2's on tool turns."""

    chat_template = "{{ raise_exception('roles must alternate') }}"
    bos_token, eos_token = "<s>", "</s>"

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> str:
        raise ValueError("Conversation roles must alternate user/assistant/user/assistant")


def test_a_refusing_template_falls_back_to_llama2() -> None:
    request = ChatRequest(messages=[{"role": "user", "content": "Hi"}])
    text = render_text(request, _RefusingTemplate())
    assert text == llama2_chat_prompt(flatten_messages(request.messages), bos="<s>", eos="</s>")
    assert text.startswith("<s>[INST] Hi [/INST]")


def test_tool_history_is_rendered_into_the_prompt(tokenizer: Any) -> None:
    request = ChatRequest(
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "-3 C"},
        ],
        tools=[TOOL],
    )
    text = render_prompt(request, tokenizer).text
    assert "get_weather" in text
    assert '"city": "Oslo"' in text or '"city":"Oslo"' in text
    assert "-3 C" in text


def test_raw_prompt_is_untouched_and_plain_prompt_is_a_user_turn(tokenizer: Any) -> None:
    raw = render_prompt(PromptRequest(prompt="<|im_start|>user\nx", raw=True), tokenizer)
    assert raw.text == "<|im_start|>user\nx"
    assert raw.ids == tokenizer("<|im_start|>user\nx", add_special_tokens=False)["input_ids"]
    wrapped = render_text(PromptRequest(prompt="x"), tokenizer)
    assert "<|im_start|>user\nx<|im_end|>" in wrapped


def test_importing_the_packages_does_not_import_torch() -> None:
    code = (
        "import sys, cf_llama2, cf_llama2.backends, cf_llama2.backends.local;"
        "from cf_llama2.backends.local import LocalBackend; LocalBackend();"
        "heavy = ('torch', 'transformers', 'bitsandbytes');"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
