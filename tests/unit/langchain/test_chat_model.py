"""ChatCloudflareLlama2 over the scripted backend: requests, results, streams, tools."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from cf_llama2.errors import (
    ConfigurationError,
    IncompleteStreamError,
    RateLimitError,
    RequestValidationError,
)
from cf_llama2.schema import (
    ChatRequest,
    EndEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from cf_llama2.testing import ScriptedBackend, tool_call
from langchain_cf_llama2 import ChatCloudflareLlama2, CloudflareLlama2


class GetWeather(BaseModel):
    """Get the weather in a city."""

    city: str = Field(description="The city name.")


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"It is sunny in {city}."


def chat(*script: Any, **kwargs: Any) -> tuple[ChatCloudflareLlama2, ScriptedBackend]:
    backend = ScriptedBackend(list(script), model="scripted-llama")
    return ChatCloudflareLlama2(backend=backend, **kwargs), backend


def last_request(backend: ScriptedBackend) -> ChatRequest:
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    return request


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


# ------------------------------------------------------------------ construction


def test_construction_resolves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"):
        monkeypatch.delenv(key, raising=False)
    model = ChatCloudflareLlama2()  # no credentials: fine until the first call
    assert model._handle is None
    assert model.api_token is None
    local = ChatCloudflareLlama2(backend="local")
    assert local._handle is None


def test_close_leaves_a_given_backend_open() -> None:
    model, backend = chat("a", "b")
    model.invoke("hi")
    model.close()
    assert backend.closed is False
    assert model.invoke("again").content == "b"


def test_remote_options_with_another_backend_are_refused_at_construction() -> None:
    backend = ScriptedBackend(["a"])
    with pytest.raises(ConfigurationError, match="model only apply to backend='remote'"):
        ChatCloudflareLlama2(backend=backend, model="meta-llama/Llama-2-7b-chat-hf")
    assert backend.requests == []


def test_unknown_backend_name_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="'gpu-cluster' is not a backend name"):
        ChatCloudflareLlama2(backend="gpu-cluster")


def test_api_key_alias_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_AI_API_TOKEN", "from-env")
    monkeypatch.setenv("CF_ACCOUNT_ID", "acct-env")
    model = ChatCloudflareLlama2()
    assert model.api_token is not None
    assert model.api_token.get_secret_value() == "from-env"
    assert model.account_id == "acct-env"
    aliased = ChatCloudflareLlama2(api_key="given")
    assert aliased.api_token is not None
    assert aliased.api_token.get_secret_value() == "given"


def test_secret_never_appears() -> None:
    model = ChatCloudflareLlama2(api_token="super-secret-token", account_id="acct")
    for text in (repr(model), str(model), dumps(model), json.dumps(dumpd(model))):
        assert "super-secret-token" not in text
    assert "super-secret-token" not in str(model._identifying_params)
    assert not ChatCloudflareLlama2.is_lc_serializable()


def test_identity_and_ls_params() -> None:
    model = ChatCloudflareLlama2(
        api_token="t", account_id="a", temperature=0.2, max_tokens=40, stop=["\n"]
    )
    assert model._llm_type == "cloudflare-llama2-chat"
    assert model._identifying_params == {
        "model": "@cf/meta/llama-2-7b-chat-int8",
        "backend": "remote",
        "temperature": 0.2,
        "max_tokens": 40,
        "stop": ["\n"],
    }
    params = model._get_ls_params(stop=["x"])
    assert params["ls_provider"] == "cloudflare"
    assert params["ls_model_name"] == "@cf/meta/llama-2-7b-chat-int8"
    assert params["ls_model_type"] == "chat"
    assert params["ls_temperature"] == 0.2
    assert params["ls_max_tokens"] == 40
    assert params["ls_stop"] == ["x"]
    scripted, _ = chat()
    assert scripted._get_ls_params()["ls_provider"] == "scripted"
    assert scripted._get_ls_params()["ls_model_name"] == "scripted-llama"


# ------------------------------------------------------------------ requests


def test_model_fields_and_per_call_overrides_reach_the_request() -> None:
    model, backend = chat("a", "b", temperature=0, max_tokens=50, top_k=5, seed=7, lora="x")
    model.invoke("hi")
    first = last_request(backend)
    assert (first.temperature, first.max_tokens, first.top_k, first.seed, first.lora) == (
        0,
        50,
        5,
        7,
        "x",
    )
    model.invoke("hi", max_tokens=9, top_p=0.5, repetition_penalty=1.1, presence_penalty=0.3)
    second = last_request(backend)
    assert (second.max_tokens, second.top_p, second.repetition_penalty) == (9, 0.5, 1.1)
    assert (second.presence_penalty, second.top_k) == (0.3, 5)


def test_stop_from_field_and_from_call() -> None:
    model, backend = chat("a", "b", "c", stop=["END"])
    model.invoke("hi")
    assert last_request(backend).stop == ["END"]
    model.invoke("hi", stop=["you"])
    assert last_request(backend).stop == ["you"]
    model.bind(stop=["bound"]).invoke("hi")
    assert last_request(backend).stop == ["bound"]


def test_unknown_keyword_raises_naming_it() -> None:
    model, _ = chat("a")
    with pytest.raises(RequestValidationError, match="unknown keyword argument 'max_new_tokens'"):
        model.invoke("hi", max_new_tokens=5)


def test_out_of_range_field_raises_at_construction() -> None:
    with pytest.raises(RequestValidationError, match=r"temperature must be a number in 0\.\.5"):
        chat("a", temperature=9)
    with pytest.raises(RequestValidationError, match=r"top_k must be an integer in 1\.\.50"):
        CloudflareLlama2(backend=ScriptedBackend([]), top_k=0)


def test_out_of_range_per_call_override_raises_before_any_call() -> None:
    model, backend = chat("a")
    with pytest.raises(RequestValidationError, match=r"temperature must be a number in 0\.\.5"):
        model.invoke("hi", temperature=9)
    assert backend.requests == []


def test_history_reaches_the_request() -> None:
    model, backend = chat("ok")
    model.invoke([("system", "be brief"), ("human", "hi"), ("ai", "hello"), ("human", "bye")])
    assert [(m.role, m.content) for m in last_request(backend).messages] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "bye"),
    ]


# ------------------------------------------------------------------ results


def test_invoke_text_usage_and_metadata() -> None:
    model, _ = chat("Hello there, friend.")
    message = model.invoke("hi")
    assert isinstance(message, AIMessage)
    assert message.content == "Hello there, friend."
    assert message.usage_metadata == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert message.response_metadata["model_name"] == "scripted-llama"
    assert message.response_metadata["finish_reason"] == "stop"


def test_invalid_tool_calls_come_back() -> None:
    events = [ToolCallDelta(index=0, id="c1", name="f", arguments="city=Paris"), EndEvent()]
    model, _ = chat(events, events)
    message = model.invoke("hi")
    assert message.tool_calls == []
    [bad] = message.invalid_tool_calls
    assert (bad["name"], bad["args"], bad["id"]) == ("f", "city=Paris", "c1")
    assert "not valid JSON" in (bad["error"] or "")
    streamed = merge(list(model.stream("hi")))
    assert streamed.tool_calls == []
    assert [(c["name"], c["args"], c["id"]) for c in streamed.invalid_tool_calls] == [
        ("f", "city=Paris", "c1")
    ]


def test_backend_errors_propagate() -> None:
    model, _ = chat(RateLimitError("slow down", status_code=429))
    with pytest.raises(RateLimitError, match="slow down"):
        model.invoke("hi")


async def test_ainvoke() -> None:
    model, _ = chat("async hello")
    message = await model.ainvoke("hi")
    assert message.content == "async hello"
    assert message.usage_metadata is not None


# ------------------------------------------------------------------ streaming


def test_stream_text_then_one_last_chunk_with_usage() -> None:
    model, backend = chat("one two three")
    chunks = list(model.stream("hi"))
    assert last_request(backend).stream is True
    assert [c.content for c in chunks[:-1]] == ["one ", "two ", "three"]
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert last.response_metadata == {"model_name": "scripted-llama", "finish_reason": "stop"}
    assert all(c.usage_metadata is None for c in chunks[:-1])
    full = merge(chunks)
    assert full.content == "one two three"


async def test_astream_matches_stream() -> None:
    model, _ = chat("one two three", "one two three")
    sync_chunks = list(model.stream("hi"))
    async_chunks = [c async for c in model.astream("hi")]
    assert [c.content for c in async_chunks] == [c.content for c in sync_chunks]
    assert merge(async_chunks).usage_metadata == merge(sync_chunks).usage_metadata


def test_forced_tool_call_stream_merges_to_invoke() -> None:
    answer = tool_call("GetWeather", "call_fixed", city="Paris")
    model, backend = chat(answer, answer)
    bound = model.bind_tools([GetWeather], tool_choice="GetWeather")
    invoked = bound.invoke("weather?")
    chunks = list(bound.stream("weather?"))
    assert last_request(backend).tool_choice == "GetWeather"
    # Tool calls come as tool_call_chunks, never as JSON text.
    assert all(c.content == "" for c in chunks)
    tool_chunks = [tc for c in chunks for tc in c.tool_call_chunks]
    assert [tc["name"] for tc in tool_chunks] == ["GetWeather", None]
    assert [tc["id"] for tc in tool_chunks] == ["call_fixed", None]
    assert all(isinstance(tc["index"], int) for tc in tool_chunks)
    full = merge(chunks)
    assert full.tool_calls == invoked.tool_calls
    assert invoked.tool_calls == [
        {"name": "GetWeather", "args": {"city": "Paris"}, "id": "call_fixed", "type": "tool_call"}
    ]
    assert full.response_metadata["finish_reason"] == "tool_calls"


async def test_forced_tool_call_astream_merges_to_ainvoke() -> None:
    answer = tool_call("GetWeather", "call_fixed", city="Paris")
    model, _ = chat(answer, answer)
    bound = model.bind_tools([GetWeather], tool_choice="any")
    invoked = await bound.ainvoke("weather?")
    chunks = [c async for c in bound.astream("weather?")]
    assert merge(chunks).tool_calls == invoked.tool_calls


def test_incomplete_stream_raises() -> None:
    model, _ = chat([TextDelta(text="cut "), TextDelta(text="short")])
    with pytest.raises(IncompleteStreamError):
        list(model.stream("hi"))


def test_usage_only_once_even_if_backend_repeats_it() -> None:
    usage = Usage(prompt_tokens=4, completion_tokens=2, total_tokens=6)
    events = [
        TextDelta(text="a"),
        UsageEvent(usage=usage),
        TextDelta(text="b"),
        UsageEvent(usage=usage),
        EndEvent(finish_reason="length", model="m"),
    ]
    model, _ = chat(events)
    chunks = list(model.stream("hi"))
    assert [c.usage_metadata is not None for c in chunks] == [False, False, True]
    assert chunks[-1].response_metadata == {"model_name": "m", "finish_reason": "length"}


class TokenCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_token_callback_fires_once_per_chunk() -> None:
    model, _ = chat("alpha beta gamma")
    counter = TokenCounter()
    chunks = list(model.stream("hi", config={"callbacks": [counter]}))
    assert counter.tokens == [c.content for c in chunks]


def test_streaming_flag_streams_under_invoke() -> None:
    model, backend = chat("alpha beta", streaming=True)
    counter = TokenCounter()
    message = model.invoke("hi", config={"callbacks": [counter]})
    assert last_request(backend).stream is True
    assert message.content == "alpha beta"
    assert counter.tokens[:2] == ["alpha ", "beta"]
    assert message.usage_metadata is not None


# ------------------------------------------------------------------ tools


def test_bind_tools_sends_core_tools_and_choice() -> None:
    model, backend = chat("no tool needed", "x")
    model.bind_tools([get_weather, GetWeather], tool_choice="auto").invoke("hi")
    request = last_request(backend)
    assert [t.name for t in request.tools] == ["get_weather", "GetWeather"]
    assert request.tool_choice == "auto"
    model.bind_tools([get_weather], tool_choice="none").invoke("hi")
    assert last_request(backend).tool_choice == "none"


def test_bind_tools_rejects_unknown_choice_early() -> None:
    model, _ = chat()
    with pytest.raises(RequestValidationError, match="'nope' is not one of the tools"):
        model.bind_tools([get_weather], tool_choice="nope")


def test_agent_loop_round_trip() -> None:
    model, backend = chat(tool_call("get_weather", "call_1", city="Paris"), "It is sunny in Paris.")
    bound = model.bind_tools([get_weather])
    messages: list[Any] = [HumanMessage("What is the weather in Paris?")]
    first = bound.invoke(messages)
    assert first.tool_calls[0]["name"] == "get_weather"
    messages.append(first)
    for call in first.tool_calls:
        messages.append(get_weather.invoke(call))
    assert isinstance(messages[-1], ToolMessage)
    final = bound.invoke(messages)
    assert final.content == "It is sunny in Paris."
    sent = last_request(backend).messages
    assert sent[1].tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]
    assert (sent[2].role, sent[2].tool_call_id, sent[2].name) == ("tool", "call_1", "get_weather")
    assert sent[2].content == "It is sunny in Paris."


# ------------------------------------------------------------------ structured output


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="The setup.")
    punchline: str = Field(description="The punchline.")


class JokeDict(TypedDict):
    """A joke."""

    setup: str
    punchline: str


JOKE = {"setup": "Why?", "punchline": "Because."}


@pytest.mark.parametrize("schema", [Joke, JokeDict, Joke.model_json_schema()])
def test_structured_output_function_calling(schema: Any) -> None:
    name = "Joke" if schema is not JokeDict else "JokeDict"
    model, backend = chat(tool_call(name, **JOKE))
    result = model.with_structured_output(schema).invoke("tell me a joke")
    request = last_request(backend)
    assert request.tool_choice == name
    assert [t.name for t in request.tools] == [name]
    if schema is Joke:
        assert result == Joke(**JOKE)
    else:
        assert result == JOKE


@pytest.mark.parametrize("schema", [Joke, JokeDict, Joke.model_json_schema()])
def test_structured_output_json_schema(schema: Any) -> None:
    model, backend = chat(json.dumps(JOKE))
    result = model.with_structured_output(schema, method="json_schema").invoke("a joke")
    request = last_request(backend)
    assert request.tools == []
    assert request.response_format is not None
    assert request.response_format.type == "json_schema"
    assert request.response_format.json_schema is not None
    assert set(request.response_format.json_schema["properties"]) == {"setup", "punchline"}
    assert result == (Joke(**JOKE) if schema is Joke else JOKE)


def test_structured_output_json_mode() -> None:
    model, backend = chat(json.dumps(JOKE))
    result = model.with_structured_output(method="json_mode").invoke("a joke as JSON")
    request = last_request(backend)
    assert request.response_format is not None
    assert request.response_format.type == "json_object"
    assert result == JOKE


def test_structured_output_include_raw() -> None:
    model, _ = chat(tool_call("Joke", **JOKE), "not a call")
    structured = model.with_structured_output(Joke, include_raw=True)
    ok = structured.invoke("a joke")
    assert isinstance(ok, dict)
    assert ok["parsed"] == Joke(**JOKE)
    assert ok["parsing_error"] is None
    assert isinstance(ok["raw"], AIMessage)
    json_structured = model.with_structured_output(Joke, method="json_schema", include_raw=True)
    bad = json_structured.invoke("a joke")
    assert isinstance(bad, dict)
    assert bad["parsed"] is None
    assert bad["parsing_error"] is not None
    assert bad["raw"].content == "not a call"


def test_structured_output_stream_function_calling() -> None:
    model, _ = chat(tool_call("Joke", **JOKE))
    results = list(model.with_structured_output(Joke).stream("a joke"))
    assert results[-1] == Joke(**JOKE)


def test_structured_output_bad_arguments() -> None:
    model, _ = chat()
    with pytest.raises(ValueError, match="method='xml' is not supported"):
        model.with_structured_output(Joke, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported arguments"):
        model.with_structured_output(Joke, foo=1)
    with pytest.raises(ValueError, match="needs a schema"):
        model.with_structured_output(None)


def test_generate_reports_model_and_usage() -> None:
    from cf_llama2.schema import ChatResult

    usage = Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    model, _ = chat(
        ChatResult(response="a", usage=usage),  # no model named: the backend's
        ChatResult(response="b", usage=usage, model="@cf/named"),
    )
    first, second = (model._generate([HumanMessage("hi")]) for _ in range(2))
    assert first.llm_output == {"model_name": "scripted-llama", "token_usage": usage.model_dump()}
    assert second.llm_output == {"model_name": "@cf/named", "token_usage": usage.model_dump()}
    message = second.generations[0].message
    assert message.response_metadata == {"model_name": "@cf/named", "finish_reason": "stop"}
