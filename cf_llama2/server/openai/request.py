"""An OpenAI ``/chat/completions`` body -> the core :class:`~cf_llama2.schema.ChatRequest`.

Read: ``model`` (required), ``messages`` (tool history in the OpenAI or the Workers AI shape;
``developer`` is a system message), ``tools``, ``tool_choice``, ``response_format``
(``text``, ``json_object``, ``json_schema``), ``stream`` and ``stream_options.include_usage``,
``max_completion_tokens`` / ``max_tokens``, ``temperature``, ``top_p``, ``seed``, ``stop``,
``frequency_penalty``, ``presence_penalty``, ``n`` (1 only) and our ``lora`` / ``top_k`` /
``repetition_penalty``. Keys without meaning here (``user``, ``metadata``, ``store``,
``parallel_tool_calls`` ...) are ignored and reported in ``notes``; options this server cannot
honour (``n > 1``, ``logprobs``, ``audio`` ...) are refused with a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import RequestValidationError
from ...schema import ChatRequest, parse_request
from ...wire.tolerant import normalize_tool_choice, tolerate_body

__all__ = ["OpenAIChatRequest", "openai_body_to_request"]

_PASSED = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "seed",
        "stop",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "lora",
    }
)
_HANDLED = frozenset(
    {"model", "n", "stream_options", "response_format", "max_tokens", "max_completion_tokens"}
)
# Honouring these would change the answer's meaning; refusing beats ignoring them.
_UNSUPPORTED = {
    "logprobs": "log probabilities are not returned by this server",
    "top_logprobs": "log probabilities are not returned by this server",
    "audio": "this server answers in text only",
    "modalities": "this server answers in text only",
    "prediction": "predicted outputs are not supported",
    "logit_bias": "logit_bias is not supported",
    "web_search_options": "this server has no web search",
}


@dataclass
class OpenAIChatRequest:
    """A chat completion request, read: the served model name, the core request, the extras."""

    model: str
    request: ChatRequest
    include_usage: bool = False
    notes: list[str] = field(default_factory=list)


def _invalid(message: str, field_name: str, value: Any, limit: str) -> RequestValidationError:
    return RequestValidationError(message, field=field_name, value=value, limit=limit)


def _response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _invalid(
            "response_format must be an object like {'type': 'json_object'}; got "
            + type(value).__name__,
            "response_format",
            type(value).__name__,
            "{'type': 'text' | 'json_object' | 'json_schema'}",
        )
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping) or not schema:
            raise _invalid(
                "response_format.json_schema.schema must be a non-empty JSON schema object "
                "(OpenAI's {'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}})",
                "response_format.json_schema.schema",
                schema,
                "a JSON schema object",
            )
        return {"type": "json_schema", "json_schema": dict(schema)}
    raise _invalid(
        f"response_format.type must be 'text', 'json_object' or 'json_schema'; got {kind!r}",
        "response_format.type",
        kind,
        "'text', 'json_object' or 'json_schema'",
    )


def _max_tokens(body: Mapping[str, Any]) -> Any:
    value = body.get("max_completion_tokens")
    return body.get("max_tokens") if value is None else value


def _include_usage(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, Mapping) or not isinstance(value.get("include_usage", False), bool):
        raise _invalid(
            "stream_options must be an object like {'include_usage': true}",
            "stream_options",
            value,
            "{'include_usage': bool}",
        )
    return bool(value.get("include_usage", False))


def openai_body_to_request(body: Any) -> OpenAIChatRequest:
    """Read an OpenAI chat completion body.

    Raises:
        RequestValidationError: not an object, no model, no messages, ``n`` other than 1, an
            unsupported option, or any field the core schema refuses (the message names it).
    """
    if not isinstance(body, Mapping):
        raise _invalid(
            f"the request body must be a JSON object; got {type(body).__name__}",
            "",
            type(body).__name__,
            "an object with model and messages",
        )
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid(
            "model is required: the name of a served model (GET /v1/models lists them)",
            "model",
            model,
            "a served model name",
        )
    if "messages" not in body:
        raise _invalid(
            "messages is required: a non-empty list of {role, content} messages",
            "messages",
            None,
            "a non-empty list",
        )
    for key, why in _UNSUPPORTED.items():
        if body.get(key) not in (None, False, []):
            raise _invalid(f"{key} is not supported: {why}", key, body[key], "leave it out")
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise _invalid(f"n must be 1 (one choice per request); got {n!r}", "n", n, "1")
    notes = [
        f"ignored unknown key {key!r}"
        for key in body
        if key not in _PASSED and key not in _HANDLED and key not in _UNSUPPORTED
    ]
    data: dict[str, Any] = {k: v for k, v in body.items() if k in _PASSED}
    if "tool_choice" in data:
        data["tool_choice"] = normalize_tool_choice(data["tool_choice"])
    max_tokens = _max_tokens(body)
    if max_tokens is not None:
        data["max_tokens"] = max_tokens
    response_format = _response_format(body.get("response_format"))
    if response_format is not None:
        data["response_format"] = response_format
    data, message_notes = tolerate_body(data)
    notes.extend(message_notes)
    request = parse_request(data)
    assert isinstance(request, ChatRequest)
    stream = request.stream
    include_usage = _include_usage(body.get("stream_options")) if stream else False
    return OpenAIChatRequest(
        model=model.strip(), request=request, include_usage=include_usage, notes=notes
    )
