"""A cheap lower bound on a prompt's token count, checked before the full tokenization.

No token of a vocabulary covers more characters than its longest entry (byte-level entries stand
for one byte, at most one character, per symbol), so a text of ``n`` characters needs at least
``n / longest`` tokens. A request whose message texts alone need more tokens than the context
window holds is refused at once, without tokenizing megabytes of text first.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from ...errors import RequestTooLargeError
from ...schema import ChatRequest, Request

__all__ = ["check_prompt_bound", "longest_token_chars"]

_LONGEST: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters one token of ``tokenizer`` can cover (cached per tokenizer)."""
    try:
        return _LONGEST[tokenizer]
    except (KeyError, TypeError):
        pass
    longest = max((len(entry) for entry in tokenizer.get_vocab()), default=1)
    with contextlib.suppress(TypeError):  # not weak-referenceable: computed again next time
        _LONGEST[tokenizer] = max(1, longest)
    return max(1, longest)


def _text_chars(request: Request) -> int:
    if isinstance(request, ChatRequest):
        return sum(len(m.content.strip()) for m in request.messages)
    return len(request.prompt.strip())


def check_prompt_bound(request: Request, tokenizer: Any, context_window: int) -> None:
    """Refuse ``request`` when its texts cannot fit the context window, whatever the tokens.

    Raises:
        RequestTooLargeError: the texts need at least ``context_window`` tokens.
    """
    chars = _text_chars(request)
    longest = longest_token_chars(tokenizer)
    if chars < context_window * longest:
        return
    at_least = chars // longest
    raise RequestTooLargeError(
        f"the prompt is at least {at_least} tokens ({chars} characters; no token of this model "
        f"covers more than {longest}) but the model's context window is {context_window} tokens "
        "(prompt + answer). Shorten the messages, or use a model with a longer context window."
    )
