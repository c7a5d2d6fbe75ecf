"""Conversation messages in the shapes real clients send -> the canonical message dicts.

Workers AI's message schema requires ``role`` and ``content`` and forbids nothing else, and
clients written against it or against OpenAI's chat API send tool history in several shapes.
:func:`normalize_messages` accepts all of them and returns dicts that
:class:`~cf_llama2.schema.Message` validates:

* ``content``: a string, ``null`` / absent (an assistant message that only calls tools), or a
  list of text parts (``{"type": "text", "text": ...}`` or plain strings), joined by newlines;
* ``tool_calls``: flat ``{"id"?, "name", "arguments"}`` items or OpenAI's
  ``{"id"?, "type": "function", "function": {"name", "arguments"}}``; ``arguments`` is an object
  or a JSON string of one (``null`` or ``""``: no arguments);
* missing call ids are made (``call_<message>_<call>``), and a ``tool`` message without
  ``tool_call_id`` answers the next unanswered call of the assistant message before it, in order.

What cannot be read (a non-text content part, arguments that are not a JSON object, a call with
no name) raises :class:`~cf_llama2.errors.RequestValidationError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import RequestValidationError

__all__ = ["normalize_content", "normalize_messages", "normalize_tool_call"]

_JSON_OR_STRING = "a JSON object (or a JSON string of one)"


_TEXT_PART = "a text part {'type': 'text', 'text': '...'}"


def normalize_content(content: Any, *, where: str) -> Any:
    """``content`` as a string: ``None`` -> ``""``, text parts joined; other values unchanged.

    Raises:
        RequestValidationError: a list part that is not text (images and audio are not served).
    """
    if content is None:
        return ""
    if not isinstance(content, list):
        return content
    texts: list[str] = []
    for i, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
        text = part.get("text") if isinstance(part, Mapping) else None
        if kind not in ("text", None) or not isinstance(text, str):
            fix = "This model reads text only: send images or files as text."
            raise RequestValidationError(
                field=f"{where}.{i}", limit=_TEXT_PART, value=kind, got=f"a {kind!r} part", fix=fix
            )
        texts.append(text)
    return "\n".join(texts)


def _arguments(raw: Any, *, where: str) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            got = f"a string that is not JSON ({exc.msg} at column {exc.colno})"
            raise RequestValidationError(
                field=where, limit=_JSON_OR_STRING, value=raw[:80], got=got
            ) from None
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        raise RequestValidationError(field=where, limit=_JSON_OR_STRING, value=kind, got=kind)
    return dict(raw)


def normalize_tool_call(call: Any, *, where: str, default_id: str) -> Any:
    """One tool call, flat or OpenAI-shaped, as ``{"id", "name", "arguments": {...}}``.

    Values that are not mappings are returned unchanged (the schema then says what is wrong).

    Raises:
        RequestValidationError: no name, or arguments that are not a JSON object.
    """
    if not isinstance(call, Mapping):
        return call
    inner = call.get("function")
    if isinstance(inner, Mapping):
        kind = call.get("type", "function")
        if kind != "function":
            raise RequestValidationError(field=f"{where}.type", limit="'function'", value=kind)
        source: Mapping[str, Any] = inner
        args_where = f"{where}.function.arguments"
    else:
        source = call
        args_where = f"{where}.arguments"
    name = source.get("name")
    if not isinstance(name, str) or not name:
        fix = "A tool call needs the name of the tool it calls."
        raise RequestValidationError(
            field=f"{where}.name", limit="a non-empty string", value=name, fix=fix
        )
    call_id = call.get("id")
    return {
        "id": call_id if isinstance(call_id, str) and call_id else default_id,
        "name": name,
        "arguments": _arguments(source.get("arguments"), where=args_where),
    }


def normalize_messages(messages: Any) -> Any:
    """Normalise a ``messages`` list (see the module docstring); other values pass unchanged.

    Items that are not mappings (e.g. :class:`~cf_llama2.schema.Message` objects) are kept as
    they are.

    Raises:
        RequestValidationError: a content part, tool call or arguments value cannot be read.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, (str, bytes)):
        return messages
    out: list[Any] = []
    unanswered: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            out.append(message)
            continue
        item = dict(message)
        if "content" in item or item.get("tool_calls"):
            item["content"] = normalize_content(item.get("content"), where=f"messages.{i}.content")
        calls = item.get("tool_calls")
        if calls is None:
            item.pop("tool_calls", None)
        elif isinstance(calls, list):
            item["tool_calls"] = [
                normalize_tool_call(
                    c, where=f"messages.{i}.tool_calls.{j}", default_id=f"call_{i}_{j}"
                )
                for j, c in enumerate(calls)
            ]
            unanswered = [c["id"] for c in item["tool_calls"] if isinstance(c, Mapping)]
        if item.get("role") in ("tool", "function"):
            call_id = item.get("tool_call_id")
            if call_id is None and unanswered:
                item["tool_call_id"] = unanswered.pop(0)
            elif call_id in unanswered:
                unanswered.remove(call_id)
        out.append(item)
    return out
