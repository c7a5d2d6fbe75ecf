"""Request, result and stream-event models shared by every backend and adapter.

Requests come in the two shapes of the model page: :class:`ChatRequest` (``messages``) and
:class:`PromptRequest` (``prompt``). Every sampling field carries the model page's range; a value
out of range raises :class:`~cf_llama2.errors.RequestValidationError` at construction, before any
I/O, with the field, the range and the value given.

A few fields are ours, not the wire's, and are never sent as body fields: ``stop``,
``tool_choice`` and ``response_format``. Each backend gives them the same meaning (see the
backends' docs for how the remote one emulates them).

Results: :class:`ChatResult` (text, tool calls, usage, finish reason). Streams are sequences of
:data:`StreamEvent`: :class:`TextDelta`, :class:`ToolCallDelta`, :class:`UsageEvent` and a final
:class:`EndEvent`. :func:`cf_llama2.schema.reducer.reduce_events` folds a stream into a result; the
non-streaming paths return exactly what that reducer returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import RequestValidationError
from ..tools import (
    FunctionDef,
    Tool,
    normalize_functions,
    normalize_tool,
    normalize_tool_choice,
    normalize_tools,
)
from ..tools._validation import from_pydantic
from ._message_shapes import normalize_content, normalize_messages, normalize_tool_call

__all__ = [
    "MAX_TEXT",
    "SAMPLING_FIELDS",
    "ChatRequest",
    "ChatResult",
    "EndEvent",
    "FinishReason",
    "InvalidToolCall",
    "Message",
    "PromptRequest",
    "Request",
    "ResponseFormat",
    "Role",
    "SamplingParams",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "Usage",
    "UsageEvent",
    "parse_request",
]

MAX_TEXT = 131072
Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]
ToolChoice = str
"""``"auto"`` (default), ``"none"``, ``"required"`` or a tool name; every other form users pass
(``"any"``, ``True``, the OpenAI dict, a tool) is normalised by
:func:`~cf_llama2.tools.normalize_tool_choice`."""


class _Strict(BaseModel):
    """Base for user-built models: validation errors become ``RequestValidationError``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __init__(self, **data: Any) -> None:
        # Shape conversions raise their own errors (with the field), outside pydantic.
        data = self._prepare(data)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise from_pydantic(exc, model=type(self).__name__) from None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Convert accepted input shapes before validation (subclasses override)."""
        return data


class ToolCall(BaseModel):
    """A parsed, valid tool call. ``arguments`` is always a JSON object (a dict)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class InvalidToolCall(BaseModel):
    """Model output meant as a tool call that could not be used, kept with the reason."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    arguments: str = ""
    error: str


class Message(_Strict):
    """One conversation message.

    ``tool_calls`` (assistant) and ``tool_call_id``/``name`` (tool) are not wire fields: the
    remote backend renders them into ``content``, the local backend into the prompt. Clients'
    shapes are accepted (see :mod:`cf_llama2.schema._message_shapes`): ``content`` ``None`` or a
    list of text parts, OpenAI-shaped tool calls, arguments as a JSON string, calls without ids.
    """

    role: Role
    content: str = Field(default="", max_length=MAX_TEXT)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        item = dict(data)
        if "content" in item or item.get("tool_calls"):
            item["content"] = normalize_content(item.get("content"), where="content")
        calls = item.get("tool_calls")
        if calls is None:
            item.pop("tool_calls", None)
        elif isinstance(calls, list):
            item["tool_calls"] = [
                normalize_tool_call(c, where=f"tool_calls.{j}", default_id=f"call_{j}")
                for j, c in enumerate(calls)
            ]
        return item

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            return {
                "human": "user",
                "ai": "assistant",
                "function": "tool",
                "developer": "system",
            }.get(v, v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls; this one is {self.role!r}")
        return self


class ResponseFormat(_Strict):
    """Structured output: the answer must be JSON that validates against ``json_schema``."""

    type: Literal["json_schema", "json_object"] = "json_schema"
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _needs_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and not self.json_schema:
            raise ValueError("response_format.json_schema is required when type='json_schema'")
        return self


SAMPLING_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "lora",
)
"""The model page's sampling fields, in its order: the adapters expose each as a model field."""


class SamplingParams(_Strict):
    """The sampling fields common to both request shapes, with the model page's ranges."""

    stream: bool = False
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.6, ge=0, le=5)
    top_p: float | None = Field(default=None, ge=0, le=2)
    top_k: int | None = Field(default=None, ge=1, le=50)
    seed: int | None = Field(default=None, ge=1, le=9_999_999_999)
    repetition_penalty: float | None = Field(default=None, ge=0, le=2)
    frequency_penalty: float | None = Field(default=None, ge=0, le=2)
    presence_penalty: float | None = Field(default=None, ge=0, le=2)
    lora: str | None = Field(default=None, min_length=1)
    # Ours, never sent as a body field: text is cut at the first stop sequence on every backend.
    stop: list[str] = Field(default_factory=list, max_length=4)
    response_format: ResponseFormat | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list) and any(not isinstance(s, str) or not s for s in v):
            raise ValueError("stop sequences must be non-empty strings")
        return v

    def sampling_wire(self) -> dict[str, Any]:
        """The sampling fields as the wire body carries them (``None`` fields left out)."""
        keys = ("stream", *SAMPLING_FIELDS)
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class ChatRequest(SamplingParams):
    """The messages shape: a conversation, optional tools and the sampling fields."""

    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] = Field(default_factory=list)
    functions: list[FunctionDef] = Field(default_factory=list)
    tool_choice: ToolChoice = "auto"

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "messages" in data:
            data = {**data, "messages": normalize_messages(data["messages"])}
        return data

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, v: Any) -> Any:
        return normalize_tools(v)

    @field_validator("functions", mode="before")
    @classmethod
    def _functions(cls, v: Any) -> Any:
        return normalize_functions(v)

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _choice_form(cls, v: Any) -> Any:
        return normalize_tool_choice(v)

    @model_validator(mode="after")
    def _choice(self) -> ChatRequest:
        choice = normalize_tool_choice(self.tool_choice, self.tools)
        if choice != self.tool_choice:
            object.__setattr__(self, "tool_choice", choice)
        return self

    def forced_tools(self) -> list[Tool]:
        """The tools a call must come from: all for ``required``, one for a name, none else."""
        if self.tool_choice == "required":
            return list(self.tools)
        if self.tool_choice in ("auto", "none"):
            return []
        return [t for t in self.tools if t.name == self.tool_choice]

    def sent_tools(self) -> list[Tool]:
        """The tools put before the model: none for ``"none"``, the named one for a name.

        They are returned as the wire carries them (every property has a ``type`` and a
        ``description``), so the instruction in the prompt describes exactly what was sent and
        a server can recognise it.
        """
        if self.tool_choice == "none":
            return []
        tools = self.tools if self.tool_choice in ("auto", "required") else self.forced_tools()
        return [normalize_tool(t.to_wire("flat")) for t in tools]


class PromptRequest(SamplingParams):
    """The prompt shape: one text prompt; ``raw=True`` skips the chat template."""

    prompt: str = Field(min_length=1, max_length=MAX_TEXT)
    raw: bool = False


Request = ChatRequest | PromptRequest


def parse_request(data: Request | Mapping[str, Any]) -> Request:
    """Validate a Workers AI request body (either shape) into a request model.

    Args:
        data: a decoded request body (``messages`` or ``prompt``), or a request model.

    Returns:
        A ``ChatRequest`` or a ``PromptRequest`` (a request model is returned as is).

    Raises:
        RequestValidationError: the body matches neither shape, or a field is out of range.
    """
    if isinstance(data, (ChatRequest, PromptRequest)):
        return data
    if not isinstance(data, Mapping):
        raise RequestValidationError(
            f"a request must be a JSON object; got {type(data).__name__}",
            field="",
            value=type(data).__name__,
            limit="an object with 'messages' or 'prompt'",
        )
    has_messages, has_prompt = "messages" in data, "prompt" in data
    if has_messages == has_prompt:
        raise RequestValidationError(
            "a request must have exactly one of 'messages' (chat) or 'prompt' (text completion); "
            f"got {'both' if has_messages else 'neither'}",
            field="messages" if not has_messages else "prompt",
            value=sorted(data),
            limit="exactly one of messages/prompt",
        )
    cls: type[ChatRequest] | type[PromptRequest] = ChatRequest if has_messages else PromptRequest
    return cls(**dict(data))


# ---------------------------------------------------------------------------------------------
# Results and stream events


class Usage(BaseModel):
    """Token counts, as Workers AI reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResult(BaseModel):
    """A complete answer: text, tool calls, usage and why generation stopped."""

    response: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    finish_reason: FinishReason = "stop"
    model: str = ""


class TextDelta(BaseModel):
    """A piece of answer text."""

    type: Literal["text"] = "text"
    text: str


class ToolCallDelta(BaseModel):
    """A piece of a tool call. ``id`` and ``name`` come on the first delta of an ``index``;
    ``arguments`` are JSON text fragments whose concatenation is the arguments object."""

    type: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    error: str | None = None
    """Set (on any delta of an ``index``) when a parser judged the call unusable (unknown tool,
    broken or cut-off JSON); the reducer then returns an ``InvalidToolCall`` with this reason."""


class UsageEvent(BaseModel):
    """Token usage (sent once, near the end)."""

    type: Literal["usage"] = "usage"
    usage: Usage


class EndEvent(BaseModel):
    """The last event of every complete stream."""

    type: Literal["end"] = "end"
    finish_reason: FinishReason = "stop"
    model: str = ""


StreamEvent = Annotated[
    TextDelta | ToolCallDelta | UsageEvent | EndEvent, Field(discriminator="type")
]
