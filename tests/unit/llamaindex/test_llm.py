"""CloudflareLlama2 on a scripted backend: configuration, requests, responses, tool calling."""

from __future__ import annotations

import json
import pickle

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from cf_llama2.backends.base import BackendInfo
from cf_llama2.errors import ConfigurationError, IncompleteStreamError, RequestValidationError
from cf_llama2.schema import (
    ChatRequest,
    ChatResult,
    EndEvent,
    PromptRequest,
    ResponseFormat,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from cf_llama2.testing import ScriptedBackend, tool_call
from llamaindex_cf_llama2 import CloudflareLlama2

USER = [ChatMessage(role="user", content="hi")]


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


WEATHER = FunctionTool.from_defaults(get_weather)


def make(*script: object, **kwargs: object) -> tuple[CloudflareLlama2, ScriptedBackend]:
    backend = ScriptedBackend(list(script))  # type: ignore[arg-type]
    return CloudflareLlama2(backend=backend, **kwargs), backend  # type: ignore[arg-type]


def chat_request(backend: ScriptedBackend, index: int = -1) -> ChatRequest:
    request = backend.requests[index]
    assert isinstance(request, ChatRequest)
    return request


# -- configuration -----------------------------------------------------------------------------


def test_unknown_backend_name() -> None:
    with pytest.raises(ConfigurationError, match=r"'remote'.*'local'"):
        CloudflareLlama2(backend="cloud")


def test_object_that_is_not_a_backend() -> None:
    with pytest.raises(ConfigurationError, match="backend object"):
        CloudflareLlama2(backend=object())  # type: ignore[arg-type]


def test_remote_options_with_another_backend_are_not_dropped_silently() -> None:
    with pytest.raises(ConfigurationError, match="only apply to backend='remote'"):
        CloudflareLlama2(backend="local", model="@cf/meta/llama-2-7b-chat-fp16")
    with pytest.raises(ConfigurationError, match="api_token"):
        CloudflareLlama2(backend=ScriptedBackend(), api_token="secret")


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 7.0), ("top_k", 51), ("max_tokens", 0), ("seed", 0), ("top_p", 3.0)],
)
def test_out_of_range_fields_fail_at_construction(field: str, value: object) -> None:
    with pytest.raises(RequestValidationError) as info:
        CloudflareLlama2(backend=ScriptedBackend(), **{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_construction_resolves_nothing() -> None:
    from cf_llama2.backends import factory

    before = factory._default_local
    llm = CloudflareLlama2(backend="local")
    assert llm.backend == "local"
    assert factory._default_local is before  # the embedded model is not loaded yet
    remote = CloudflareLlama2()  # no credentials needed until the first call
    assert remote.backend == "remote"


def test_api_token_never_appears_in_repr_or_serialisation() -> None:
    llm = CloudflareLlama2(api_token="tok-SECRET-123", account_id="acct")
    dumps = [
        repr(llm),
        str(llm),
        llm.to_json(),
        json.dumps(llm.to_dict()),
        json.dumps(llm.model_dump(mode="json")),
        repr(pickle.loads(pickle.dumps(llm))),
    ]
    assert pickle.loads(pickle.dumps(llm)).account_id == "acct"
    for text in dumps:
        assert "tok-SECRET-123" not in text
    assert "acct" in llm.to_json()
    assert llm.class_name() == "CloudflareLlama2"


def test_metadata_comes_from_the_backend() -> None:
    llm, _ = make(max_tokens=100)
    meta = llm.metadata
    assert meta.context_window == 4096
    assert meta.num_output == 100
    assert meta.is_chat_model
    assert meta.is_function_calling_model
    assert meta.model_name == "scripted"


def test_metadata_context_window_of_another_model_and_override() -> None:
    backend = ScriptedBackend()
    backend._info = BackendInfo(model="small", context_window=2048, provider="local")
    assert CloudflareLlama2(backend=backend).metadata.context_window == 2048
    override = CloudflareLlama2(backend=backend, context_window=1024)
    assert override.metadata.context_window == 1024


# -- request fields ------------------------------------------------------------------------------


def test_instance_fields_reach_the_request() -> None:
    llm, backend = make("ok", temperature=0, max_tokens=64, top_k=5, seed=7, stop=["END"])
    llm.chat(USER)
    request = chat_request(backend)
    assert (request.temperature, request.max_tokens, request.top_k, request.seed) == (0, 64, 5, 7)
    assert request.stop == ["END"]
    assert request.stream is False


def test_per_call_kwargs_override_instance_fields() -> None:
    llm, backend = make("ok", "ok", temperature=0.2, max_tokens=64)
    llm.chat(USER, temperature=1.5, max_tokens=5, repetition_penalty=1.1, lora="adapter")
    request = chat_request(backend)
    assert (request.temperature, request.max_tokens) == (1.5, 5)
    assert (request.repetition_penalty, request.lora) == (1.1, "adapter")
    llm.chat(USER, temperature=None)  # None keeps the instance value
    assert chat_request(backend).temperature == 0.2


def test_unknown_kwargs_raise_and_name_the_argument() -> None:
    llm, backend = make("ok")
    with pytest.raises(RequestValidationError, match="max_new_tokens") as info:
        llm.chat(USER, max_new_tokens=5)
    assert info.value.field == "max_new_tokens"
    assert backend.requests == []


def test_out_of_range_per_call_value() -> None:
    llm, backend = make("ok")
    with pytest.raises(RequestValidationError) as info:
        llm.chat(USER, temperature=9)
    assert info.value.field == "temperature"
    assert backend.requests == []


def test_response_format_from_a_pydantic_class() -> None:
    class City(BaseModel):
        name: str

    llm, backend = make('{"name": "Oslo"}')
    llm.chat(USER, response_format=City)
    fmt = chat_request(backend).response_format
    assert isinstance(fmt, ResponseFormat)
    assert fmt.json_schema == City.model_json_schema()


# -- chat and complete ----------------------------------------------------------------------------


def test_chat_returns_text_usage_and_raw() -> None:
    llm, _ = make("Hello there")
    response = llm.chat(USER)
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Hello there"
    assert response.additional_kwargs["total_tokens"] == 12
    assert response.raw is not None
    assert response.raw["usage"]["completion_tokens"] == 2


async def test_achat() -> None:
    llm, backend = make("async hello")
    response = await llm.achat(USER, seed=3)
    assert response.message.content == "async hello"
    assert chat_request(backend).seed == 3


def test_stream_chat() -> None:
    llm, backend = make("one two three")
    chunks = list(llm.stream_chat(USER))
    assert "".join(c.delta or "" for c in chunks) == "one two three"
    assert chunks[-1].message.content == "one two three"
    assert chunks[-1].additional_kwargs["total_tokens"] == 13
    assert chat_request(backend).stream is True


async def test_astream_chat() -> None:
    llm, _ = make("one two")
    chunks = [c async for c in await llm.astream_chat(USER)]
    assert [c.delta for c in chunks] == ["one ", "two", ""]


def test_cut_stream_raises_instead_of_ending_quietly() -> None:
    llm, _ = make([TextDelta(text="partial ")])
    gen = llm.stream_chat(USER)
    assert next(gen).delta == "partial "
    with pytest.raises(IncompleteStreamError):
        next(gen)


async def test_cut_async_stream_raises() -> None:
    llm, _ = make([TextDelta(text="partial ")])
    with pytest.raises(IncompleteStreamError):
        _ = [c async for c in await llm.astream_chat(USER)]


def test_backend_errors_propagate() -> None:
    llm, _ = make(ConfigurationError("boom"))
    with pytest.raises(ConfigurationError, match="boom"):
        llm.chat(USER)


def test_complete_uses_the_prompt_shape() -> None:
    llm, backend = make("done", completion_to_prompt=lambda p: f"Q: {p}")
    response = llm.complete("2+2?", max_tokens=8)
    assert response.text == "done"
    assert response.additional_kwargs["total_tokens"] == 11
    request = backend.requests[-1]
    assert isinstance(request, PromptRequest)
    assert (request.prompt, request.raw, request.max_tokens) == ("Q: 2+2?", False, 8)


def test_complete_formatted_and_raw() -> None:
    llm, backend = make("x", completion_to_prompt=lambda p: f"Q: {p}")
    llm.complete("[INST] hi [/INST]", formatted=True, raw=True)
    request = backend.requests[-1]
    assert isinstance(request, PromptRequest)
    assert (request.prompt, request.raw) == ("[INST] hi [/INST]", True)


def test_complete_rejects_tools() -> None:
    llm, _ = make("x")
    with pytest.raises(RequestValidationError, match="complete\\(\\) takes no tools"):
        llm.complete("hi", tools=[WEATHER])


async def test_acomplete_and_stream_complete_forms() -> None:
    llm, _ = make("a b", "c d", "e f")
    assert (await llm.acomplete("p")).text == "a b"
    chunks = list(llm.stream_complete("p"))
    assert [c.delta for c in chunks] == ["c ", "d", ""]
    achunks = [c async for c in await llm.astream_complete("p")]
    assert achunks[-1].text == "e f"


def test_token_counting_handler_reads_usage() -> None:
    counter = TokenCountingHandler()
    backend = ScriptedBackend(
        [
            ChatResult(
                response="x", usage=Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)
            )
        ]
    )
    llm = CloudflareLlama2(backend=backend, callback_manager=CallbackManager([counter]))
    llm.chat(USER)
    assert counter.prompt_llm_token_count == 5
    assert counter.completion_llm_token_count == 3


def test_close_leaves_given_backends_open() -> None:
    llm, backend = make("x")
    llm.close()
    assert not backend.closed


# -- tool calling ---------------------------------------------------------------------------------


def test_chat_with_tools_sends_tools_and_returns_calls() -> None:
    llm, backend = make(tool_call("get_weather", "call_1", city="Paris"))
    response = llm.chat_with_tools([WEATHER], user_msg="weather in Paris?")
    request = chat_request(backend)
    assert [t.name for t in request.tools] == ["get_weather"]
    assert request.tool_choice == "auto"
    assert request.messages[-1].content == "weather in Paris?"
    calls = llm.get_tool_calls_from_response(response)
    assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in calls] == [
        ("call_1", "get_weather", {"city": "Paris"})
    ]


def test_tool_required_and_tool_choice_reach_the_request() -> None:
    llm, backend = make(tool_call("get_weather", city="A"), tool_call("get_weather", city="B"))
    llm.chat_with_tools([WEATHER], user_msg="x", tool_required=True)
    assert chat_request(backend).tool_choice == "required"
    llm.chat_with_tools([WEATHER], user_msg="x", tool_choice="get_weather")
    assert chat_request(backend).tool_choice == "get_weather"


def test_prepare_does_not_mutate_the_history() -> None:
    llm, _ = make()
    history = [ChatMessage(role="system", content="be brief")]
    kwargs = llm._prepare_chat_with_tools([WEATHER], user_msg="hi", chat_history=history)
    assert len(history) == 1
    assert [m.role for m in kwargs["messages"]] == [MessageRole.SYSTEM, MessageRole.USER]


def test_tool_choice_for_an_unknown_tool() -> None:
    llm, _ = make()
    with pytest.raises(RequestValidationError, match="not one of the tools"):
        llm.chat_with_tools([WEATHER], user_msg="x", tool_choice="nope")


def test_parallel_calls_are_cut_to_one_unless_allowed() -> None:
    two = ChatResult(
        tool_calls=[
            ToolCall(id="c1", name="get_weather", arguments={"city": "A"}),
            ToolCall(id="c2", name="get_weather", arguments={"city": "B"}),
        ],
        finish_reason="tool_calls",
    )
    llm, _ = make(two, two)
    single = llm.chat_with_tools([WEATHER], user_msg="x")
    assert [c.tool_id for c in llm.get_tool_calls_from_response(single)] == ["c1"]
    assert len(single.message.additional_kwargs["tool_calls"]) == 1
    both = llm.chat_with_tools([WEATHER], user_msg="x", allow_parallel_tool_calls=True)
    assert [c.tool_id for c in llm.get_tool_calls_from_response(both)] == ["c1", "c2"]


def test_predict_and_call_runs_the_tool() -> None:
    llm, _ = make(tool_call("get_weather", city="Lima"))
    out = llm.predict_and_call([WEATHER], user_msg="weather in Lima?")
    assert out.response == "Sunny in Lima"


async def test_apredict_and_call_runs_the_tool() -> None:
    llm, _ = make(tool_call("get_weather", city="Quito"))
    out = await llm.apredict_and_call([WEATHER], user_msg="weather in Quito?")
    assert out.response == "Sunny in Quito"


def test_get_tool_calls_from_a_partial_stream_chunk() -> None:
    llm, _ = make()
    chunk = ChatResponse(
        message=ChatMessage(
            role="assistant",
            blocks=[
                TextBlock(text=""),
                ToolCallBlock(
                    tool_call_id="c", tool_name="get_weather", tool_kwargs='{"city": "Paris", "da'
                ),
            ],
        )
    )
    calls = llm.get_tool_calls_from_response(chunk, error_on_no_tool_call=False)
    assert calls[0].tool_name == "get_weather"
    assert calls[0].tool_kwargs["city"] == "Paris"
    garbage = ChatResponse(
        message=ChatMessage(
            role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs="{{{")]
        )
    )
    assert llm.get_tool_calls_from_response(garbage)[0].tool_kwargs == {}


def test_get_tool_calls_from_legacy_additional_kwargs() -> None:
    llm, _ = make()
    response = ChatResponse(
        message=ChatMessage(
            role="assistant",
            content="",
            additional_kwargs={
                "tool_calls": [
                    {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]
            },
        )
    )
    calls = llm.get_tool_calls_from_response(response)
    assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in calls] == [("x", "f", {})]


def test_no_tool_call_raises_or_returns_empty() -> None:
    llm, _ = make("just text", "more text")
    response = llm.chat_with_tools([WEATHER], user_msg="x")
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="answered with text: 'just text'"):
        llm.get_tool_calls_from_response(response)


def test_no_valid_call_names_the_invalid_one() -> None:
    bad = [
        ToolCallDelta(index=0, id="c", name="get_weather", arguments='{"city": '),
        EndEvent(finish_reason="length"),
    ]
    llm, _ = make(bad)
    response = llm.chat_with_tools([WEATHER], user_msg="x")
    assert response.message.additional_kwargs["invalid_tool_calls"][0]["name"] == "get_weather"
    with pytest.raises(ValueError, match="get_weather: arguments are not valid JSON") as info:
        llm.get_tool_calls_from_response(response)
    assert "Raise max_tokens" in str(info.value)


def test_stream_chat_with_tools_streams_the_call() -> None:
    llm, _ = make(tool_call("get_weather", "c7", city="Bern"))
    chunks = list(llm.stream_chat_with_tools([WEATHER], user_msg="weather in Bern?"))
    partial = llm.get_tool_calls_from_response(chunks[0], error_on_no_tool_call=False)
    assert partial[0].tool_name == "get_weather"
    final = llm.get_tool_calls_from_response(chunks[-1])
    assert [(c.tool_id, c.tool_kwargs) for c in final] == [("c7", {"city": "Bern"})]


async def test_astream_chat_with_tools_streams_the_call() -> None:
    llm, backend = make(tool_call("get_weather", "c8", city="Nice"))
    gen = await llm.astream_chat_with_tools([WEATHER], user_msg="weather?", tool_required=True)
    chunks = [c async for c in gen]
    assert chat_request(backend).tool_choice == "required"
    final = llm.get_tool_calls_from_response(chunks[-1])
    assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in final] == [
        ("c8", "get_weather", {"city": "Nice"})
    ]


def test_tool_history_round_trips_into_the_next_request() -> None:
    llm, backend = make(tool_call("get_weather", "c1", city="Oslo"), "It is sunny.")
    first = llm.chat_with_tools([WEATHER], user_msg="weather in Oslo?")
    history = [
        ChatMessage(role="user", content="weather in Oslo?"),
        first.message,
        ChatMessage(role="tool", content="Sunny in Oslo", additional_kwargs={"tool_call_id": "c1"}),
    ]
    llm.chat_with_tools([WEATHER], chat_history=history)
    messages = chat_request(backend).messages
    assert [m.role for m in messages] == ["user", "assistant", "tool"]
    assert messages[1].tool_calls[0].arguments == {"city": "Oslo"}
    assert (messages[2].tool_call_id, messages[2].name) == ("c1", "get_weather")


# -- structured output ----------------------------------------------------------------------------


class Album(BaseModel):
    """A music album."""

    title: str
    year: int


PROMPT = PromptTemplate("Make up an album about {topic}.")


def test_structured_predict_forces_the_schema_tool() -> None:
    llm, backend = make(tool_call("Album", title="Blue", year=1971))
    album = llm.structured_predict(Album, PROMPT, topic="the sea")
    assert album == Album(title="Blue", year=1971)
    request = chat_request(backend)
    assert request.tool_choice == "required"
    assert [t.name for t in request.tools] == ["Album"]
    assert request.tools[0].parameters["required"] == ["title", "year"]
    assert "the sea" in request.messages[-1].content


async def test_astructured_predict() -> None:
    llm, _ = make(tool_call("Album", title="Red", year=1989))
    album = await llm.astructured_predict(Album, PROMPT, topic="autumn")
    assert album == Album(title="Red", year=1989)


def test_as_structured_llm() -> None:
    llm, _ = make(tool_call("Album", title="Green", year=2001))
    structured = llm.as_structured_llm(Album)
    response = structured.chat([ChatMessage(role="user", content="an album please")])
    assert isinstance(response.raw, Album)
    assert json.loads(response.message.content or "") == {"title": "Green", "year": 2001}


def test_stream_structured_predict_builds_the_object() -> None:
    llm, _ = make(tool_call("Album", title="Gold", year=1999))
    objects = list(llm.stream_structured_predict(Album, PROMPT, topic="x"))
    assert objects[-1] == Album(title="Gold", year=1999)


def test_pickled_copy_without_its_backend_object_says_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm, _ = make("x")  # a ScriptedBackend holds a lock, so it cannot be pickled
    copy = pickle.loads(pickle.dumps(llm))
    assert copy.backend == "ScriptedBackend"
    with pytest.raises(ConfigurationError, match="ScriptedBackend backend object"):
        copy.chat(USER)
