"""A tool-calling agent with LangChain on Llama 2 chat: call a tool, read its result, answer.

Runs offline on the embedded int8 model (the default here) or on Workers AI:

    python examples/langchain_agent.py                    # embedded local model
    python examples/langchain_agent.py --backend remote   # needs CLOUDFLARE_ACCOUNT_ID/API_TOKEN

The loop is the classic one (no LangGraph needed): the model answers with tool calls, each call
runs and goes back as a ``ToolMessage``, until the model answers in text. The first step forces
a tool call (``tool_choice="any"``) because this agent must look the facts up; later steps let
the model choose, and the last allowed step forbids tools so the loop always ends.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, tool

from langchain_cf_llama2 import ChatCloudflareLlama2

WEATHER = {"paris": "18°C and sunny", "london": "12°C and raining", "tokyo": "22°C and cloudy"}


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: the city name, e.g. "Paris".
    """
    return WEATHER.get(city.strip().lower(), f"no weather data for {city}")


def run_agent(
    llm: BaseChatModel, tools: Sequence[BaseTool], question: str, *, max_steps: int = 3
) -> tuple[AIMessage, list[BaseMessage]]:
    """Run the tool loop; return the final answer and the whole conversation."""
    by_name = {t.name: t for t in tools}
    messages: list[BaseMessage] = [
        SystemMessage("You are a helpful assistant. Use the tools to look facts up."),
        HumanMessage(question),
    ]
    for step in range(max_steps):
        choice = "any" if step == 0 else "none" if step == max_steps - 1 else "auto"
        reply = llm.bind_tools(tools, tool_choice=choice).invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return reply, messages
        for call in reply.tool_calls:
            messages.append(by_name[call["name"]].invoke(call))
    raise RuntimeError(f"the agent did not answer within {max_steps} steps")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local", choices=["local", "remote"])
    parser.add_argument("--question", default="What is the weather in Paris right now?")
    args = parser.parse_args(argv)

    llm = ChatCloudflareLlama2(backend=args.backend, temperature=0, max_tokens=96)
    answer, messages = run_agent(llm, [get_weather], args.question)
    for message in messages[1:]:
        calls = getattr(message, "tool_calls", None)
        if calls:
            for call in calls:
                print(f"[{message.type}] tool call: {call['name']}({call['args']})")
        else:
            print(f"[{message.type}] {message.text}")
    tokens = answer.usage_metadata["total_tokens"] if answer.usage_metadata else None
    print(f"-- {len(messages) - 2} messages; the final answer used {tokens} tokens")


if __name__ == "__main__":
    main()
