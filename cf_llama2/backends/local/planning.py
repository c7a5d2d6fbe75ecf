"""From a validated request to a decoding :class:`~.generation.Plan`, and the model step.

:func:`build_plan` checks what only the local backend can check (the prompt fits the context
window, no Workers AI ``functions``), renders and tokenizes the prompt and picks the answer mode:
a forced tool call under the tool grammar, ``response_format`` under its schema's grammar, or
free text watched for a tool call when tools are offered. :func:`model_step` wraps one forward
pass with the KV cache.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from typing import Any

from ...errors import RequestTooLargeError, RequestValidationError
from ...schema import ChatRequest, Request
from .call_shaping import (
    DEFAULT_SHAPING,
    ToolCallShaping,
    close_reserve,
    copy_token_ids,
    opener_token_ids,
)
from .chat_format import ChatFormat, render_prompt
from .generation import Plan, Step
from .grammar import (
    GrammarLogitsProcessor,
    build_matcher,
    closing_tokens,
    ll_tokenizer,
    response_format_schema,
    separator_tokens,
    tool_call_schema,
)
from .lora import LoraAdapters
from .prompt_bound import check_prompt_bound
from .sampling import make_sampler
from .value_copy import ValueCopy

__all__ = ["build_plan", "eos_ids", "forward_kwargs", "model_step"]


def build_plan(
    request: Request,
    *,
    model: Any,
    tokenizer: Any,
    context_window: int,
    model_name: str,
    chat_format: ChatFormat = "auto",
    cancelled: threading.Event | None = None,
    shaping: ToolCallShaping = DEFAULT_SHAPING,
) -> Plan:
    """The decoding plan for ``request``.

    Raises:
        RequestTooLargeError: the prompt does not fit the context window (names both counts).
        RequestValidationError: ``functions`` given, or a schema the grammar cannot enforce.
    """
    if isinstance(request, ChatRequest) and request.functions:
        names = [f.name for f in request.functions]
        fix = (
            "Functions are code for Workers AI to run: pass tools=[...] and run the tools yourself."
        )
        raise RequestValidationError(
            field="functions", limit="empty on the local backend", value=names, fix=fix
        )
    check_prompt_bound(request, tokenizer, context_window)  # before tokenizing megabytes
    prompt = render_prompt(request, tokenizer, chat_format, shaping.tool_schemas)
    n = len(prompt.ids)
    if n >= context_window:
        raise RequestTooLargeError(
            f"the prompt is {n} tokens but the model's context window is {context_window} "
            f"tokens (prompt + answer). Shorten the messages by at least "
            f"{n - context_window + 1} tokens, or use a model with a longer context window."
        )
    vocab = int(ll_tokenizer(tokenizer).vocab_size)
    plan = Plan(
        prompt_ids=prompt.ids,
        max_new_tokens=min(request.max_tokens, context_window - n),
        sampler=make_sampler(request, prompt_length=n),
        eos_ids=eos_ids(model, tokenizer),
        vocab_size=vocab,
        model_name=model_name,
        stop=list(request.stop),
        cancelled=cancelled,
    )
    tools = request.tools if isinstance(request, ChatRequest) else []
    choice = request.tool_choice if isinstance(request, ChatRequest) else "none"
    forced = request.forced_tools() if isinstance(request, ChatRequest) else []
    if tools or request.response_format is not None:
        plan.closers = closing_tokens(tokenizer)
    if tools and choice != "none":
        plan.shaping = shaping
        if shaping.bounded:
            plan.separators = separator_tokens(tokenizer)
            plan.quote_closers = [
                i for i in plan.closers if tokenizer.decode([i]).strip().startswith('"')
            ]
            plan.quote_separators = [
                i for i in plan.separators if tokenizer.decode([i]).strip().startswith('"')
            ]
        if shaping.copy_bias and isinstance(request, ChatRequest):
            users = [m.content for m in request.messages if m.role == "user" and m.content]
            if shaping.copy_spans:
                plan.copier = ValueCopy(tokenizer, users)
                enders = sorted(set(plan.closers) | set(plan.separators))
                plan.string_enders = [
                    i for i in enders if tokenizer.decode([i]).strip().startswith('"')
                ]
                plan.number_enders = [
                    i for i in enders if tokenizer.decode([i]).strip()[:1] in (",", "}", "]")
                ]
            else:
                plan.copy_ids = copy_token_ids(tokenizer, users)
        if shaping.call_bias and not forced and not _answers_a_tool_result(request):
            plan.opener_ids = _openers(tokenizer)

    def grammar(schema: dict[str, Any], field: str) -> GrammarLogitsProcessor:
        return GrammarLogitsProcessor(build_matcher(tokenizer, schema, field=field), vocab)

    if tools and choice != "none" and forced:
        plan.mode, plan.call_tools = "call", forced
        schema = tool_call_schema(forced, shaping=shaping)
        plan.grammar = grammar(schema, "tools")
        plan.close_reserve = close_reserve(tokenizer, [t.parameters for t in forced], shaping)
    elif request.response_format is not None:
        fmt = request.response_format
        schema = response_format_schema(fmt.type, fmt.json_schema)
        plan.grammar = grammar(schema, "response_format.json_schema")
    elif tools and choice != "none":
        plan.mode, plan.call_tools, plan.tools, plan.parse_calls = "watch", tools, tools, True
        plan.close_reserve = close_reserve(tokenizer, [t.parameters for t in tools], shaping)
    return plan


def _answers_a_tool_result(request: Request) -> bool:
    """Whether the turn answers a tool's result: the model then speaks unbiased.

    The call bias helps a model that would otherwise never call to make the first call; once
    a tool has answered, the same bias makes an agent call again and again instead of using
    the result (measured with a LlamaIndex FunctionAgent on the embedded model: three calls
    and no answer with the bias, one call and the answer without it).
    """
    messages = request.messages if isinstance(request, ChatRequest) else []
    return bool(messages) and messages[-1].role == "tool"


_opener_cache: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()
_opener_lock = threading.Lock()


def _openers(tokenizer: Any) -> list[int]:
    with _opener_lock:
        cached = _opener_cache.get(tokenizer)
        if cached is None:
            cached = _opener_cache[tokenizer] = opener_token_ids(tokenizer)
        return cached


def eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The token ids that end an answer: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif isinstance(extra, (list, tuple)):
        ids.update(int(i) for i in extra)
    return frozenset(ids)


def forward_kwargs(model: Any) -> tuple[str, dict[str, Any]]:
    """The KV-cache keyword of ``model.forward`` (``cache`` in recent Transformers, else
    ``past_key_values``) and ``logits_to_keep=1`` where supported (no logits for the prompt)."""
    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    return cache_kw, extra


def model_step(
    model: Any, adapters: LoraAdapters | None, lock: threading.Lock, lora: str | None
) -> Step:
    """One forward pass per call: new token ids + cache in, last logits (CPU float32) out.

    The lock covers the adapter switch and the forward pass, so concurrent requests (each with
    its own cache, sampler and grammar) interleave step by step.
    """
    import torch

    device = model.get_input_embeddings().weight.device
    cache_kw, extra = forward_kwargs(model)
    if lora is not None and adapters is not None:
        adapters.ensure(lora)

    def step(new_ids: list[int], cache: Any) -> tuple[Any, Any]:
        ids = torch.tensor([new_ids], dtype=torch.long, device=device)
        with lock:
            if adapters is not None and (lora is not None or adapters.loaded):
                adapters.activate(lora)
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=True, **{cache_kw: cache}, **extra)
        next_cache = getattr(out, "cache", None)
        if next_cache is None:
            next_cache = getattr(out, "past_key_values", None)
        # A normal tensor (not an inference one): the processors update it in place.
        return out.logits[:, -1, :].to("cpu", torch.float32).clone(), next_cache

    return step
