"""The ``openai`` SDK against the OpenAI-compatible routes (scripted backend, real HTTP)."""

from __future__ import annotations

import json

import pytest

openai = pytest.importorskip("openai")

from cf_llama2.schema import ChatRequest  # noqa: E402
from cf_llama2.server import ServerHandle  # noqa: E402
from cf_llama2.testing import ScriptedBackend, tool_call  # noqa: E402

from .conftest import MODEL, TOKEN, openai_base  # noqa: E402

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}


@pytest.fixture
def client(server: ServerHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=openai_base(server), api_key=TOKEN, max_retries=0)


def _last(backend: ScriptedBackend) -> ChatRequest:
    request = backend.requests[-1]
    assert isinstance(request, ChatRequest)
    return request


def test_plain_chat(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add("Hello there")
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        max_completion_tokens=12,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop=["END"],
        n=1,
    )
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert r.choices[0].message.content == "Hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.total_tokens == 12
    sent = _last(backend)
    assert [m.role for m in sent.messages] == ["system", "user"]
    assert (sent.max_tokens, sent.temperature, sent.top_p, sent.seed) == (12, 0.2, 0.9, 7)
    assert sent.stop == ["END"]


def test_root_v1_alias_and_models(server: ServerHandle, backend: ScriptedBackend) -> None:
    client = openai.OpenAI(base_url=f"{server.origin}/v1", api_key=TOKEN, max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL]
    backend.add("via the alias")
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    assert r.choices[0].message.content == "via the alias"
    assert _last(backend).max_tokens == 5


def test_streaming_text_with_usage(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add("one two three")
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_streaming_without_usage_has_no_usage_chunk(
    client: openai.OpenAI, backend: ScriptedBackend
) -> None:
    backend.add("hi")
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_forced_tool_call(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add(tool_call("get_weather", "call_w1", city="Paris"))
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_w1"
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = _last(backend)
    assert sent.tool_choice == "get_weather"
    assert [t.name for t in sent.tools] == ["get_weather"]


def test_auto_tool_loop_with_history(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add(tool_call("get_weather", "call_a", city="Oslo"), "It is 3 C in Oslo.")
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    message = first.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls or []:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "3 C"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 3 C in Oslo."
    history = _last(backend).messages
    assert history[1].tool_calls[0].id == "call_a"
    assert history[1].tool_calls[0].arguments == {"city": "Oslo"}
    assert history[2].tool_call_id == "call_a"
    assert history[2].content == "3 C"


def test_streaming_tool_call_deltas(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add(tool_call("get_weather", "call_s", city="Rome"))
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Rome?"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
    )
    ids, names, args = [], [], ""
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.index == 0
            ids.append(delta.id)
            names.append(delta.function.name if delta.function else None)
            args += (delta.function.arguments or "") if delta.function else ""
    assert ids[0] == "call_s"
    assert names[0] == "get_weather"
    assert json.loads(args) == {"city": "Rome"}
    assert _last(backend).tool_choice == "required"


def test_structured_output(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    backend.add('{"name": "Ada"}', '{"a": 1}')
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Who?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "who", "schema": schema}},
    )
    assert json.loads(r.choices[0].message.content or "") == {"name": "Ada"}
    sent = _last(backend).response_format
    assert sent is not None
    assert sent.type == "json_schema"
    assert sent.json_schema == schema
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "JSON"}],
        response_format={"type": "json_object"},
    )
    sent = _last(backend).response_format
    assert sent is not None
    assert sent.type == "json_object"


def test_errors_have_openai_shape_and_status(
    server: ServerHandle, client: openai.OpenAI, backend: ScriptedBackend
) -> None:
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="@cf/no/such-model", messages=hi)
    assert missing.value.code == "model_not_found"
    assert "@cf/no/such-model" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=hi, temperature=9)
    assert bad.value.param == "temperature"
    assert "0..5" in bad.value.message
    with pytest.raises(openai.BadRequestError, match="n must be 1"):
        client.chat.completions.create(model=MODEL, messages=hi, n=2)
    with pytest.raises(openai.BadRequestError, match="logprobs is not supported"):
        client.chat.completions.create(model=MODEL, messages=hi, logprobs=True)
    wrong = openai.OpenAI(base_url=openai_base(server), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        wrong.chat.completions.create(model=MODEL, messages=hi)
    assert "wrong" not in auth.value.message
    with pytest.raises(openai.NotFoundError, match="no embedding model"):
        client.embeddings.create(model=MODEL, input="text")
    assert backend.requests == []


def test_unregistered_lora_is_refused(client: openai.OpenAI, backend: ScriptedBackend) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"lora": "x/y"}
        )
    assert bad.value.param == "lora"
    assert "--lora NAME=PATH" in bad.value.message
    backend.add("adapted")
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"lora": "registered-adapter"},
    )
    assert r.choices[0].message.content == "adapted"
    assert _last(backend).lora == "registered-adapter"
