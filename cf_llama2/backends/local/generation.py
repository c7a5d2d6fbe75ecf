"""The decoding loop: prompt ids in, stream events out, in the calling thread.

One loop serves every request shape: it steps the model with its KV cache, applies penalties,
the grammar mask and the sampler, detokenizes incrementally, cuts at stop sequences, and turns
text into :class:`~cf_llama2.schema.TextDelta` (through the tool-call stream parser when tools
are in play) or into :class:`~cf_llama2.schema.ToolCallDelta` for grammar-constrained calls.
Being a plain generator, it streams without a helper thread; callers that must not block (the
async paths) run it in a worker thread.

Modes for the answer:

* ``text``: free text (a ``response_format`` grammar may constrain it from the first token).
* ``watch``: ``tool_choice="auto"`` with tools: free text, but if the answer starts a JSON call
  (first non-space character ``{`` or ``[``, or a ``<tool_call>`` tag or a ``json`` code fence)
  decoding switches to the
  tool-call grammar from that point, so the call is valid.
* ``call``: the tokens are a tool call under the tool-call grammar (forced from the first token
  for ``required`` or a tool name, or after a trigger in ``watch`` mode).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ...schema import (
    EndEvent,
    FinishReason,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from ...schema.stop import StopFilter
from ...tool_calls import ToolCallStreamParser, new_tool_call_id
from ...tools import Tool
from .call_shaping import DEFAULT_SHAPING, ToolCallShaping
from .detokenize import IncrementalDecoder
from .grammar import GrammarLogitsProcessor, build_matcher, tool_call_schema
from .sampling import Sampler
from .value_copy import ValueCopy, value_position

__all__ = ["Decoding", "Plan", "generate_events"]

Mode = Literal["text", "watch", "call"]
_TAGS = ("<tool_call>", "```json")
"""Openers after which a tool call follows; they are dropped and the grammar takes over."""
CLOSE_RESERVE = 12
"""Tokens before the budget ends from which a grammar-constrained value is steered to close
(a tool call's plan sets its own, sized from its schema)."""
_NAME_RE = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Plan:
    """Everything the loop needs for one request (built by the backend)."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampler: Sampler
    eos_ids: frozenset[int]
    vocab_size: int
    model_name: str = ""
    mode: Mode = "text"
    tools: list[Tool] = field(default_factory=list)
    call_tools: list[Tool] = field(default_factory=list)
    grammar: GrammarLogitsProcessor | None = None
    parse_calls: bool = False
    stop: list[str] = field(default_factory=list)
    cancelled: threading.Event | None = None
    closers: list[int] = field(default_factory=list)
    separators: list[int] = field(default_factory=list)
    quote_closers: list[int] = field(default_factory=list)
    quote_separators: list[int] = field(default_factory=list)
    close_reserve: int = CLOSE_RESERVE
    shaping: ToolCallShaping = DEFAULT_SHAPING
    copy_ids: list[int] = field(default_factory=list)
    copier: ValueCopy | None = None
    string_enders: list[int] = field(default_factory=list)
    number_enders: list[int] = field(default_factory=list)
    opener_ids: list[int] = field(default_factory=list)


Step = Callable[[list[int], Any], Any]
"""``step(new_ids, cache) -> (last-position logits on CPU as float32 [1, vocab], cache)``."""


class _Run:
    def __init__(self, plan: Plan, tokenizer: Any) -> None:
        self.plan = plan
        self.tokenizer = tokenizer
        self.mode: Mode = plan.mode
        self.grammar = plan.grammar
        self.decoder = IncrementalDecoder(tokenizer)
        self.stops = StopFilter(plan.stop) if plan.stop else None
        self.parser = ToolCallStreamParser(plan.tools) if plan.parse_calls else None
        self.pending = ""
        self.call_ids: list[int] = []
        self.value_from = 0  # where in call_ids the value being written starts
        self.out: list[StreamEvent] = []
        self.stopped = False

    # -- text ------------------------------------------------------------------------------
    def emit_text(self, text: str) -> None:
        if self.stops is not None:
            text = self.stops.feed(text)
            if self.stops.stopped:
                self.stopped = True
        self._route(text)

    def _route(self, text: str) -> None:
        if not text:
            return
        if self.parser is not None:
            self.out.extend(self.parser.feed(text))
        else:
            self.out.append(TextDelta(text=text))

    # -- tool-call trigger -----------------------------------------------------------------
    def start_call(self, context: Any, scores: Any | None, *, as_list: bool = False) -> None:
        """Switch to the tool-call grammar; with ``scores``, mask them for a re-pick."""
        matcher = build_matcher(
            self.tokenizer,
            tool_call_schema(self.plan.call_tools, many=as_list, shaping=self.plan.shaping),
            field="tools",
        )
        self.grammar = GrammarLogitsProcessor(matcher, self.plan.vocab_size)
        self.mode = "call"
        self.pending = ""
        if scores is not None:
            self.grammar(context, scores)

    def accept(self, token: int, context: Any, scores: Any) -> int:
        """Decide what ``token`` means; may re-pick it under a newly triggered grammar."""
        if self.mode == "watch":
            peek = (
                self.pending + self.tokenizer.decode([token], skip_special_tokens=True)
            ).lstrip()
            if peek[:1] in ("{", "["):
                self.start_call(context, scores, as_list=peek[0] == "[")
                token = self.plan.sampler.pick(context, scores)
        if self.grammar is not None:
            self.grammar.consume(token)
            self.grammar.mark_consumed(len(context[0]) + 1)
        if self.mode == "call":
            self.call_ids.append(token)
            return token
        delta = self.decoder.add(token)
        if self.mode == "watch":
            self.pending += delta
            head = self.pending.lstrip()
            if head.startswith(_TAGS):
                self.start_call(context, None)
            elif not head or any(tag.startswith(head) for tag in _TAGS):
                return token
            else:
                self.mode, text, self.pending = "text", self.pending, ""
                self.emit_text(text)
            return token
        self.emit_text(delta)
        return token

    # -- end -------------------------------------------------------------------------------
    def finish(self, finish: FinishReason) -> FinishReason:
        if self.mode == "call":
            return self._finish_call(finish)
        tail = self.decoder.flush()
        if self.mode == "watch":
            tail, self.pending = self.pending + tail, ""
        if not self.stopped:
            self.emit_text(tail)
            if self.stops is not None and not self.stopped:
                self._route(self.stops.flush())
        if self.parser is not None:
            events, finish = self.parser.finish(finish)
            self.out.extend(events)
        return finish

    def _finish_call(self, finish: FinishReason) -> FinishReason:
        text = self.tokenizer.decode(self.call_ids, skip_special_tokens=True)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            name = _NAME_RE.search(text)
            args = text.split('"arguments":', 1)[1] if '"arguments":' in text else ""
            self.out.append(
                ToolCallDelta(
                    index=0,
                    id=new_tool_call_id(),
                    name=name.group(1) if name else None,
                    arguments=args,
                )
            )
            return finish
        calls = value if isinstance(value, list) else [value]
        for index, call in enumerate(calls):
            self.out.append(
                ToolCallDelta(
                    index=index,
                    id=new_tool_call_id(),
                    name=call["name"],
                    arguments=json.dumps(call.get("arguments", {}), ensure_ascii=False),
                )
            )
        return "tool_calls"


def _steer(plan: Plan, run: _Run, scores: Any, left: int, raw: Any = None) -> None:
    """Biases on top of the grammar mask (forbidden tokens stay ``-inf``): the user's words
    inside a call, then closing (strongly) and separating (less) tokens near the budget end.
    ``raw``: the logits before the user's penalties, when there were any."""
    if run.mode == "call" and plan.copier is not None:
        _copy_steer(plan, plan.copier, run, scores, raw)
    elif run.mode == "call" and plan.copy_ids:
        scores[0, plan.copy_ids] += plan.shaping.copy_bias
    if plan.closers and left <= plan.close_reserve:
        if run.mode == "call" and plan.quote_closers and _in_string(run):
            # Inside a string "}" and "," are text, not closers: only a quote ends it (an
            # empty string may not end yet; the model writes its first word, then it does).
            scores[0, plan.quote_closers] += 1100.0
            if plan.quote_separators:
                scores[0, plan.quote_separators] += 500.0
            return
        scores[0, plan.closers] += 1000.0
        if plan.quote_closers:  # a string ends first, on its own quote
            scores[0, plan.quote_closers] += 100.0
        if plan.separators:
            scores[0, plan.separators] += 500.0


def _in_string(run: _Run) -> bool:
    """Whether the call written so far ends inside a string (a key or a value)."""
    text = run.tokenizer.decode(run.call_ids, skip_special_tokens=True)
    return value_position(text).kind in ("string", "key")


def _copy_steer(plan: Plan, copier: ValueCopy, run: _Run, scores: Any, raw: Any) -> None:
    """Span copy steering (:mod:`.value_copy`) for the token after the call's text so far."""
    text = run.tokenizer.decode(run.call_ids, skip_special_tokens=True)
    where = value_position(text)
    if where.kind == "start" or (where.kind == "string" and not where.text):
        run.value_from = len(run.call_ids)
    steer = copier.steer(text, run.call_ids[run.value_from :], where)
    bias = plan.shaping.copy_bias
    if steer.favour:
        _favour(scores, list(steer.favour), bias, raw)
    if steer.close:
        enders = plan.string_enders if where.kind == "string" else plan.number_enders
        if enders:
            _favour(scores, enders, bias, raw)
    if steer.repeated and plan.shaping.repeat_penalty:
        scores[0, list(steer.repeated)] -= plan.shaping.repeat_penalty


def _favour(scores: Any, ids: list[int], bias: float, raw: Any) -> None:
    """Add ``bias`` to ``ids``; with ``raw`` (logits before the user's penalties), from the
    larger of the two logits. Tokens the grammar forbids stay ``-inf``."""
    import torch

    current = scores[0, ids]
    if raw is not None:
        current = torch.where(torch.isinf(current), current, torch.maximum(current, raw[0, ids]))
    scores[0, ids] = current + bias


class Decoding:
    """One request's decoding state, advanced one model step at a time.

    The caller runs the model (alone or in a batch with other requests) and hands this request's
    last-position logits to :meth:`advance`, which applies penalties, the grammar and the
    sampler, and returns the events the new token produces. :attr:`next_ids` are the ids to feed
    the next forward pass (the prompt first, then the last token).
    """

    def __init__(self, plan: Plan, tokenizer: Any) -> None:
        self.plan = plan
        self._run = _Run(plan, tokenizer)
        self.context_ids = list(plan.prompt_ids)
        self.next_ids = list(plan.prompt_ids)
        self.produced = 0
        self.done = plan.max_new_tokens <= 0

    @property
    def cancelled(self) -> bool:
        """The caller asked to stop (a disconnected client, a closed stream)."""
        return self.plan.cancelled is not None and self.plan.cancelled.is_set()

    def advance(self, logits: Any) -> list[StreamEvent]:
        """Pick the next token from ``logits`` (``[1, vocab]``, CPU float32); its events."""
        import torch

        plan, run = self.plan, self._run
        context = torch.tensor([self.context_ids], dtype=torch.long)
        # The user's penalties count the prompt's tokens too, and so fight a value copied from
        # it; inside a call the copy steering gives those tokens their unpenalised logit back.
        raw = logits.clone() if plan.copier is not None and plan.sampler.penalties else None
        scores = plan.sampler.penalise(context, logits)
        if run.grammar is not None:
            scores = run.grammar(context, scores)
            _steer(plan, run, scores, plan.max_new_tokens - self.produced, raw)
        elif self.produced == 0 and plan.opener_ids and run.mode == "watch":
            scores[0, plan.opener_ids] += plan.shaping.call_bias
        token = plan.sampler.pick(context, scores.clone())
        self.produced += 1
        if token in plan.eos_ids:
            return self.finish("stop")
        token = run.accept(token, context, scores)
        self.context_ids.append(token)
        self.next_ids = [token]
        out = list(run.out)
        run.out.clear()
        if run.stopped or (run.grammar is not None and run.grammar.done):
            out.extend(self.finish("stop"))
        elif self.produced >= plan.max_new_tokens:
            out.extend(self.finish("length"))
        return out

    def finish(self, finish: FinishReason) -> list[StreamEvent]:
        """End the answer now: flushed text or the tool call, usage, then the end event."""
        run = self._run
        finish = run.finish(finish)
        out = list(run.out)
        run.out.clear()
        self.done = True
        prompt_tokens = len(self.plan.prompt_ids)
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=self.produced,
            total_tokens=prompt_tokens + self.produced,
        )
        out.append(UsageEvent(usage=usage))
        out.append(EndEvent(finish_reason=finish, model=self.plan.model_name))
        return out


def generate_events(plan: Plan, tokenizer: Any, step: Step) -> Iterator[StreamEvent]:
    """Run the decoding loop for ``plan`` alone with ``step``; yields events as tokens come."""
    decoding = Decoding(plan, tokenizer)
    if decoding.done:
        yield from decoding.finish("length")
        return
    cache: Any = None
    while not decoding.done:
        if decoding.cancelled:
            yield from decoding.finish("stop")
            return
        logits, cache = step(decoding.next_ids, cache)
        yield from decoding.advance(logits)
