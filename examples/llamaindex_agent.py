"""A LlamaIndex FunctionAgent that calls a tool, streaming, on the embedded local int8 model.

Run it offline with the embedded default model (SmolLM2-135M-Instruct, int8)::

    python examples/llamaindex_agent.py

or against Workers AI (set CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN)::

    python examples/llamaindex_agent.py --backend remote

The first step forces the weather tool (``initial_tool_choice``): on the local backend the call
is decoded under a grammar built from the tool's schema, so it is always a valid call. Later
steps let the model choose between answering and calling again.
"""

from __future__ import annotations

import argparse
import asyncio

from llama_index.core.agent.workflow import AgentStream, FunctionAgent, ToolCall, ToolCallResult
from llama_index.core.tools import FunctionTool

from llamaindex_cf_llama2 import CloudflareLlama2

FORECASTS = {"paris": "sunny, 21 C", "oslo": "light rain, 9 C", "lima": "cloudy, 17 C"}


def get_weather(city: str) -> str:
    """Get today's weather forecast for a city."""
    return FORECASTS.get(city.strip().lower(), "no forecast available")


async def main(backend: str, question: str) -> str:
    llm = CloudflareLlama2(backend=backend, temperature=0, max_tokens=96)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(get_weather)],
        llm=llm,
        system_prompt="You answer questions about the weather. Use the get_weather tool.",
        initial_tool_choice="get_weather",
    )
    handler = agent.run(question, max_iterations=4, early_stopping_method="generate")
    async for event in handler.stream_events():
        if isinstance(event, ToolCall):
            print(f"\n[calling {event.tool_name}({event.tool_kwargs})]")
        elif isinstance(event, ToolCallResult):
            print(f"[{event.tool_name} returned: {event.tool_output.content}]")
        elif isinstance(event, AgentStream) and event.delta:
            print(event.delta, end="", flush=True)
    response = await handler
    print(f"\n\nFinal answer: {response}")
    return str(response)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "remote"], default="local")
    parser.add_argument("--question", default="What is the weather in Paris today?")
    args = parser.parse_args()
    asyncio.run(main(args.backend, args.question))
