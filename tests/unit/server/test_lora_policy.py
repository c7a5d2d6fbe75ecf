"""LoRA on the server: only adapters registered at start; others refused at once, with no I/O."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cf_llama2.cli import parse_lora_mappings
from cf_llama2.cli._common import UsageError
from cf_llama2.errors import ConfigurationError
from cf_llama2.server import ServerHandle, serve_in_thread
from cf_llama2.server.lora import LoraPolicy
from cf_llama2.testing import ScriptedBackend

from .conftest import AUTH, MODEL, TOKEN

_events: list[tuple[str, tuple[Any, ...]]] = []
_recording = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording.is_set() and event in ("open", "socket.connect", "socket.getaddrinfo"):
        _events.append((event, args))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while asked


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServerHandle, ScriptedBackend]]:
    backend = ScriptedBackend(["ok"], repeat_last=True)
    with serve_in_thread(backend, api_token=TOKEN, lora_adapters=["tuned"]) as server:
        yield server, backend


def _loopback(event: tuple[str, tuple[Any, ...]]) -> bool:
    name, args = event
    if name == "socket.getaddrinfo":
        return args[0] in ("127.0.0.1", "localhost", "::1")
    if name == "socket.connect":
        address = args[1]
        return isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")
    return False


@pytest.mark.parametrize("lora", ["some-org/some-adapter", "/etc", "../../secrets", "tuned2"])
def test_unregistered_adapter_is_refused_without_io(
    served: tuple[ServerHandle, ScriptedBackend], lora: str
) -> None:
    server, backend = served
    body = {"messages": [{"role": "user", "content": "hi"}], "lora": lora}
    with httpx.Client(headers=AUTH) as client:
        client.post(server.run_url(MODEL), json={"prompt": "warm up"})  # imports done
        seen = len(backend.requests)
        _events.clear()
        _recording.set()
        try:
            r = client.post(server.run_url(MODEL), json=body)
        finally:
            _recording.clear()
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["code"] == 5007
    assert "--lora NAME=PATH" in error["message"]
    assert "tuned" in error["message"]
    assert len(backend.requests) == seen  # the backend never saw it
    assert [e for e in _events if e[0] == "open"] == []
    assert [e for e in _events if e[0] != "open" and not _loopback(e)] == []


def test_registered_adapter_reaches_the_backend(
    served: tuple[ServerHandle, ScriptedBackend],
) -> None:
    server, backend = served
    r = httpx.post(server.run_url(MODEL), json={"prompt": "hi", "lora": "tuned"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert backend.requests[-1].lora == "tuned"
    assert httpx.get(server.origin + "/health").json()["lora_adapters"] == ["tuned"]


def test_policy_names_are_checked() -> None:
    assert LoraPolicy(["b", "a"]).names == ["a", "b"]
    with pytest.raises(ConfigurationError, match="non-empty"):
        LoraPolicy([""])


def test_cli_lora_mappings(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    assert parse_lora_mappings([f"style={adapter}"]) == {"style": str(adapter)}
    with pytest.raises(UsageError, match="NAME=PATH"):
        parse_lora_mappings([str(adapter)])
    with pytest.raises(UsageError, match="twice"):
        parse_lora_mappings([f"a={adapter}", f"a={adapter}"])
    with pytest.raises(UsageError, match=r"adapter_config\.json"):
        parse_lora_mappings([f"a={tmp_path}"])


def test_the_audit_hook_sees_file_and_network_access(tmp_path: Path) -> None:
    # The control for the no-I/O test: the same recording does see opens and lookups.
    _events.clear()
    _recording.set()
    try:
        (tmp_path / "f").write_text("x")
        socket.getaddrinfo("127.0.0.1", 80)
    finally:
        _recording.clear()
    assert {e[0] for e in _events} == {"open", "socket.getaddrinfo"}
