"""Request side of the wire: the exact body, the options header, and the server's inverse.

The remote client emulates what the wire has no field for: ``tool_choice="none"`` sends no
tools, a named tool sends only that tool, and the tool / output-format instructions are merged
into the system message. :func:`body_to_request` undoes that merging on the server (when the
options header says so), so the local backend renders its own instructions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import prompt
from ..errors import RequestValidationError
from ..schema import ChatRequest, PromptRequest, Request, ResponseFormat, parse_request
from ..tools import Tool, ToolFormat
from .tolerant import normalize_tool_choice, tolerate_body

__all__ = [
    "OPTIONS_HEADER",
    "body_to_request",
    "request_options_header",
    "request_to_body",
    "response_format_instruction",
    "sent_tools",
]

OPTIONS_HEADER = "cf-llama2-options"
"""The request header that carries ``tool_choice``, ``stop`` and ``response_format``."""

_OPTION_KEYS = frozenset({"tool_choice", "stop", "response_format", "instructions_in_prompt"})


# ---------------------------------------------------------------------------------------------
# Requests (client side)


def sent_tools(request: Request) -> list[Tool]:
    """The tools the remote client sends (:meth:`ChatRequest.sent_tools`; none for a prompt)."""
    return request.sent_tools() if isinstance(request, ChatRequest) else []


def response_format_instruction(response_format: ResponseFormat) -> str:
    """The instruction that asks for JSON output (the remote API has no structured output)."""
    if response_format.type == "json_object" or not response_format.json_schema:
        return "Answer with a single JSON object only, with no other text."
    schema = json.dumps(response_format.json_schema, separators=(",", ":"))
    return (
        "Answer with a single JSON object only, with no other text. "
        f"It must validate against this JSON schema: {schema}"
    )


def _merge_system(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{text}" if first.get("content") else text
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _has_instructions(request: Request, tools: Sequence[Tool] | None = None) -> bool:
    if request.response_format is not None:
        return isinstance(request, ChatRequest) or not request.raw
    return bool(sent_tools(request) if tools is None else tools)


def request_to_body(
    request: Request,
    *,
    tool_format: ToolFormat = "function",
    tools: Sequence[Tool] | None = None,
) -> dict[str, Any]:
    """The exact Workers AI body for ``request`` (the model page's input schema).

    Args:
        request: a validated chat or prompt request.
        tool_format: ``"function"`` (``{"type": "function", "function": {...}}``) or ``"flat"``.
        tools: ``sent_tools(request)`` when the caller has worked it out already (it is not
            worked out again); ``None`` to work it out here.

    Returns:
        A JSON-ready dict. Chat requests carry ``messages`` with tool history rendered into
        ``content`` and the tool / output-format instructions merged into the system message.
    """
    sampling = request.sampling_wire()
    if isinstance(request, PromptRequest):
        text = request.prompt
        if request.response_format is not None and not request.raw:
            text = f"{text}\n\n{response_format_instruction(request.response_format)}"
        body: dict[str, Any] = {"prompt": text}
        if request.raw:
            body["raw"] = True
        body.update(sampling)
        return body
    tools = sent_tools(request) if tools is None else list(tools)
    choice = "auto" if request.tool_choice == "none" else request.tool_choice
    messages = prompt.flatten_messages(
        request.messages, tools=tools, tool_choice=choice, tools_in_prompt=bool(tools)
    )
    if request.response_format is not None:
        messages = _merge_system(
            list(messages), response_format_instruction(request.response_format)
        )
    body = {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}
    if tools:
        body["tools"] = [t.to_wire(tool_format) for t in tools]
    if request.functions:
        body["functions"] = [{"name": f.name, "code": f.code} for f in request.functions]
    body.update(sampling)
    return body


def request_options_header(request: Request, *, tools: Sequence[Tool] | None = None) -> str | None:
    """The ``cf-llama2-options`` header value, or ``None`` when there is nothing to say.

    Keys: ``tool_choice`` (when not ``"auto"``), ``stop``, ``response_format``, and
    ``instructions_in_prompt`` when tool or output-format instructions were merged into the
    prompt (so that :func:`body_to_request` can take them out again). ``tools``: as for
    :func:`request_to_body`.
    """
    options: dict[str, Any] = {}
    if isinstance(request, ChatRequest) and request.tool_choice != "auto":
        options["tool_choice"] = request.tool_choice
    if request.stop:
        options["stop"] = list(request.stop)
    if request.response_format is not None:
        options["response_format"] = request.response_format.model_dump(exclude_none=True)
    if _has_instructions(request, tools):
        # Tells the local server to take the merged instructions out again (it renders its own).
        options["instructions_in_prompt"] = True
    if not options:
        return None
    # Key order is kept: a response_format schema's property order is the order of the answer.
    return json.dumps(options, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Requests (server side)


def _parse_options(header: str | None) -> dict[str, Any]:
    if header is None or not header.strip():
        return {}
    try:
        options = json.loads(header)
    except json.JSONDecodeError as exc:
        got = f"text that is not JSON ({exc.msg})"
        limit = "a JSON object with tool_choice, stop and/or response_format"
        raise RequestValidationError(
            field=OPTIONS_HEADER, limit=limit, value=header[:80], got=got
        ) from None
    if not isinstance(options, dict):
        kind = type(options).__name__
        raise RequestValidationError(
            field=OPTIONS_HEADER, limit="a JSON object", value=kind, got=kind
        )
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        limit = f"a JSON object with only the keys {', '.join(sorted(_OPTION_KEYS))}"
        raise RequestValidationError(
            field=OPTIONS_HEADER, limit=limit, value=unknown, got=f"unknown keys {unknown}"
        )
    return options


def _strip_once(text: str, part: str) -> str:
    if not part:
        return text
    head, found, tail = text.partition(part)
    if not found:
        return text
    head, tail = head.strip(), tail.strip()
    return f"{head}\n\n{tail}" if head and tail else head or tail


def _strip_instructions(request: Request) -> Request:
    """Undo the client's prompt merging so the local backend renders the instructions itself."""
    if isinstance(request, PromptRequest):
        if request.response_format is None or request.raw:
            return request
        suffix = "\n\n" + response_format_instruction(request.response_format)
        if request.prompt.endswith(suffix) and len(request.prompt) > len(suffix):
            return request.model_copy(update={"prompt": request.prompt[: -len(suffix)]})
        return request
    if not request.messages or request.messages[0].role != "system":
        return request
    content = request.messages[0].content
    tools = sent_tools(request)
    if tools:
        choice = request.tool_choice
        content = _strip_once(content, prompt.tool_system_prompt(tools, choice))
    if request.response_format is not None:
        content = _strip_once(content, response_format_instruction(request.response_format))
    if content == request.messages[0].content:
        return request
    rest = list(request.messages[1:])
    if content:
        rest.insert(0, request.messages[0].model_copy(update={"content": content}))
    if not rest:
        return request
    return request.model_copy(update={"messages": rest})


def body_to_request(
    body: Any, options_header: str | None = None, *, notes: list[str] | None = None
) -> Request:
    """Validate a Workers AI request body (and the options header) into a request.

    Keys the server does not read are ignored (see :func:`~cf_llama2.wire.tolerant.tolerate_body`)
    and reported in ``notes``; tool history and ``tool_choice`` may come in the Workers AI or
    the OpenAI shape.

    Args:
        body: the decoded JSON body.
        options_header: the ``cf-llama2-options`` header value, if the client sent one.
        notes: when given, one line per ignored key is appended.

    Raises:
        RequestValidationError: the body matches neither shape, a field is out of range, or the
            header is malformed (the message names the field, the limit and the value).
    """
    options = _parse_options(options_header)
    merged = options.pop("instructions_in_prompt", False) is True
    if not isinstance(body, Mapping):
        return parse_request(body)
    data, ignored = tolerate_body(body)
    if notes is not None:
        notes.extend(ignored)
    for key, value in options.items():
        if key == "tool_choice":
            value = normalize_tool_choice(value)
        if key == "tool_choice" and "messages" not in data:
            fix = "tool_choice applies to the messages shape only; this body has 'prompt'."
            raise RequestValidationError(
                field="tool_choice", limit="absent on a prompt body", value=value, fix=fix
            )
        data[key] = value
    request = parse_request(data)
    return _strip_instructions(request) if merged else request
