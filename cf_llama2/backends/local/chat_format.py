"""Requests -> prompt text and token ids for a local model.

Chat requests are flattened by :func:`cf_llama2.prompt.flatten_messages` (tool definitions in
the system message, earlier calls and tool results rendered into the conversation), then
formatted with the tokenizer's chat template when the model ships one, else with the built-in
Llama-2 chat format (:func:`cf_llama2.prompt.llama2_chat_prompt`). A template that rejects the
conversation (Llama-2's own template refuses ``tool`` turns and non-alternating roles) falls
back to the Llama-2 format too.

Prompt requests: ``raw=True`` sends the text exactly as given (no special tokens added);
otherwise the prompt becomes one user message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...prompt import flatten_messages, llama2_chat_prompt
from ...schema import ChatRequest, Message, Request

__all__ = ["ChatFormat", "RenderedPrompt", "render_prompt"]

ChatFormat = Literal["auto", "template", "llama2"]


@dataclass(frozen=True)
class RenderedPrompt:
    """The prompt as text and as token ids."""

    text: str
    ids: list[int]


def _messages(request: Request, tool_schemas: bool = False) -> list[dict[str, str]]:
    if isinstance(request, ChatRequest):
        # The same tools the remote client sends (only the forced one for a named choice, none
        # for "none"), so a request answered here and one answered through the local server
        # see the same prompt.
        tools = request.sent_tools()
        return flatten_messages(
            request.messages,
            tools=tools,
            tool_choice=request.tool_choice if tools else "auto",
            tools_in_prompt=bool(tools),
            tool_schemas=tool_schemas,
        )
    return flatten_messages([Message(role="user", content=request.prompt)])


def _llama2(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    bos = getattr(tokenizer, "bos_token", None) or "<s>"
    eos = getattr(tokenizer, "eos_token", None) or "</s>"
    return llama2_chat_prompt(messages, bos=bos, eos=eos)


def _template(tokenizer: Any, messages: list[dict[str, str]]) -> str | None:
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # a template that rejects this conversation: use the Llama-2 format
        return None
    return text if isinstance(text, str) else None


def render_text(
    request: Request, tokenizer: Any, chat_format: ChatFormat = "auto", tool_schemas: bool = False
) -> str:
    """The prompt text for ``request`` (``tool_schemas``: see
    :func:`cf_llama2.prompt.flatten_messages`)."""
    if not isinstance(request, ChatRequest) and request.raw:
        return request.prompt
    messages = _messages(request, tool_schemas)
    if chat_format != "llama2":
        text = _template(tokenizer, messages)
        if text is not None:
            return text
    return _llama2(tokenizer, messages)


def render_prompt(
    request: Request, tokenizer: Any, chat_format: ChatFormat = "auto", tool_schemas: bool = False
) -> RenderedPrompt:
    """Render and tokenize ``request``. The text already holds every special token it needs."""
    text = render_text(request, tokenizer, chat_format, tool_schemas)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return RenderedPrompt(text=text, ids=[int(i) for i in ids])
