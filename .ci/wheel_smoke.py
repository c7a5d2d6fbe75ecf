"""Smoke test of the installed wheel, run from outside the source tree by .ci/package-check.

Usage: python -I wheel_smoke.py EXPECTED_VERSION
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import subprocess
import sys
from pathlib import Path

PACKAGES = ("cf_llama2", "langchain_cf_llama2", "llamaindex_cf_llama2")


def check_imports_and_versions(expected: str) -> None:
    """The three packages import from site-packages and report the distribution's version."""
    dist_version = importlib.metadata.version("cf-llama2")
    assert dist_version == expected, (dist_version, expected)
    for name in PACKAGES:
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "").resolve()
        assert "site-packages" in origin.parts, f"{name} imported from {origin}"
        assert module.__version__ == expected, (name, module.__version__, expected)
        assert importlib.resources.files(name).joinpath("py.typed").is_file(), f"{name}: py.typed"
    heavy = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is not None]
    assert not heavy, f"the [langchain,llamaindex,server] install pulled in {heavy}"
    licence = [f for f in importlib.metadata.files("cf-llama2") or () if f.name == "LICENSE"]
    assert licence, "LICENSE in the dist-info"
    assert "MIT License" in licence[0].read_text(), "the MIT licence text"


def check_cli() -> None:
    """``cf-llama2 --help`` runs from the installed console script."""
    script = Path(sys.executable).with_name("cf-llama2")
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("chat", "serve", "prepare"):
        assert command in done.stdout, (command, done.stdout)


def check_langchain() -> None:
    """A scripted round trip through the LangChain chat model: text, stream and a tool call."""
    from langchain_core.tools import tool

    from cf_llama2.testing import ScriptedBackend, tool_call
    from langchain_cf_llama2 import ChatCloudflareLlama2

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "18°C and sunny"

    backend = ScriptedBackend(
        ["Hello there!", "Streamed answer.", tool_call("get_weather", city="Paris")]
    )
    llm = ChatCloudflareLlama2(backend=backend)
    assert llm.invoke("hi").content == "Hello there!"
    assert "".join(str(c.content) for c in llm.stream("hi")) == "Streamed answer."
    message = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert backend.requests[-1].tools, "the tool reached the backend request"


def check_llamaindex() -> None:
    """A scripted round trip through the LlamaIndex LLM: chat, completion and a tool call."""
    from llama_index.core.llms import ChatMessage
    from llama_index.core.tools import FunctionTool

    from cf_llama2.testing import ScriptedBackend, tool_call
    from llamaindex_cf_llama2 import CloudflareLlama2

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "18°C and sunny"

    backend = ScriptedBackend(["Bonjour!", "Completed.", tool_call("get_weather", city="Paris")])
    llm = CloudflareLlama2(backend=backend)
    assert llm.chat([ChatMessage(role="user", content="hi")]).message.content == "Bonjour!"
    assert llm.complete("hi").text == "Completed."
    weather = FunctionTool.from_defaults(get_weather)
    response = llm.chat_with_tools([weather], user_msg="Weather in Paris?")
    calls = llm.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Paris"})]


def main() -> int:
    (expected,) = sys.argv[1:]
    check_imports_and_versions(expected)
    print("wheel smoke: imports, versions, py.typed, LICENSE, no torch: ok")
    for check in (check_cli, check_langchain, check_llamaindex):
        check()
        print(f"wheel smoke: {check.__name__}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
