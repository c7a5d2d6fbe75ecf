"""CloudflareLlama2 with the remote backend, over real HTTP to the local Workers AI-format server.

The server runs a scripted backend, so these tests need no model: they prove that tool calls,
streams, usage and errors survive the Workers AI wire in both directions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.tools import FunctionTool

from cf_llama2.errors import AuthenticationError
from cf_llama2.schema import ChatRequest
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.testing import ScriptedBackend, tool_call
from llamaindex_cf_llama2 import CloudflareLlama2

pytestmark = [
    # LlamaIndex's workflow runtime inspects agents with inspect.getmembers, touching pydantic's
    # deprecated instance attributes: warnings raised inside llama_index, not by this package.
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
]

TOKEN = "local-test-token"


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny and 21 C in {city}"


WEATHER = FunctionTool.from_defaults(get_weather)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend(model="@cf/meta/llama-2-7b-chat-int8")


@pytest.fixture
def server(backend: ScriptedBackend) -> Iterator[ServerHandle]:
    with serve_in_thread(backend, api_token=TOKEN) as handle:
        yield handle


def remote_llm(server: ServerHandle, token: str = TOKEN) -> CloudflareLlama2:
    return CloudflareLlama2(
        account_id="local", api_token=token, base_url=server.base_url, max_retries=0
    )


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_over_the_wire(
    server: ServerHandle, backend: ScriptedBackend, streaming: bool
) -> None:
    backend.add(tool_call("get_weather", city="Paris"), "It is sunny in Paris.")
    llm = remote_llm(server)
    agent = FunctionAgent(tools=[WEATHER], llm=llm, streaming=streaming)
    handler = agent.run("What is the weather in Paris?")
    outputs: list[str] = []
    deltas: list[str] = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            outputs.append(event.tool_output.content)
        elif isinstance(event, AgentStream):
            deltas.append(event.delta)
    response = await handler
    assert outputs == ["Sunny and 21 C in Paris"]
    assert str(response) == "It is sunny in Paris."
    if streaming:
        assert "".join(deltas) == "It is sunny in Paris."
    # the tool result went back over the wire to the model
    second = backend.requests[1]
    assert isinstance(second, ChatRequest)
    assert any("Sunny and 21 C in Paris" in m.content for m in second.messages)
    await llm.aclose()


def test_chat_usage_and_metadata_over_the_wire(
    server: ServerHandle, backend: ScriptedBackend
) -> None:
    backend.add("Hello from the server")
    llm = remote_llm(server)
    assert llm.metadata.model_name == "@cf/meta/llama-2-7b-chat-int8"
    assert llm.metadata.context_window == 4096
    response = llm.chat([ChatMessage(role="user", content="hi")], max_tokens=20, seed=5)
    assert response.message.content == "Hello from the server"
    assert response.additional_kwargs["total_tokens"] > 0
    request = backend.requests[-1]
    assert (request.max_tokens, request.seed) == (20, 5)
    llm.close()


def test_forced_tool_call_streams_over_the_wire(
    server: ServerHandle, backend: ScriptedBackend
) -> None:
    backend.add(tool_call("get_weather", city="Oslo"))
    llm = remote_llm(server)
    chunks = list(llm.stream_chat_with_tools([WEATHER], user_msg="Oslo?", tool_required=True))
    calls = llm.get_tool_calls_from_response(chunks[-1])
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert calls[0].tool_id.startswith("call_")
    llm.close()


def test_wrong_token_raises_the_typed_error(server: ServerHandle) -> None:
    llm = remote_llm(server, token="wrong-token")
    with pytest.raises(AuthenticationError) as info:
        llm.chat([ChatMessage(role="user", content="hi")])
    assert "wrong-token" not in str(info.value)
    llm.close()
