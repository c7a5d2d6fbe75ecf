"""The cheap prompt-length bound refuses what cannot fit before tokenizing it."""

from __future__ import annotations

from typing import Any

import pytest

from cf_llama2 import ChatRequest, RequestTooLargeError
from cf_llama2.backends.local.prompt_bound import check_prompt_bound, longest_token_chars


class _CountingTokenizer:
    """The real tokenizer, counting calls that would tokenize text."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("apply_chat_template", "encode", "__call__"):
            self.calls += 1
        return getattr(self._inner, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._inner(*args, **kwargs)


def test_longest_token_is_an_upper_bound(tokenizer: Any) -> None:
    longest = longest_token_chars(tokenizer)
    text = "hello world, " * 50
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) >= len(text) / longest


def test_texts_past_the_window_are_refused_untokenized(tokenizer: Any) -> None:
    counting = _CountingTokenizer(tokenizer)
    longest = longest_token_chars(tokenizer)
    request = ChatRequest(
        messages=[{"role": "user", "content": "a" * (16 * longest)}], max_tokens=1
    )
    with pytest.raises(RequestTooLargeError, match="at least 16 tokens"):
        check_prompt_bound(request, counting, context_window=16)
    assert counting.calls == 0


def test_backend_refuses_through_the_bound(tiny_model: Any, tokenizer: Any) -> None:
    from cf_llama2.backends.local import LocalBackend

    small = LocalBackend(tiny_model, tokenizer=tokenizer, context_window=16)
    longest = longest_token_chars(tokenizer)
    request = ChatRequest(messages=[{"role": "user", "content": "b" * (20 * longest)}])
    with pytest.raises(RequestTooLargeError, match="context window is 16 tokens"):
        small.run(request)
