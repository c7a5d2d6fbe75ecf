"""The server under 8 concurrent clients on the embedded model: all admitted, all complete
(slow)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from cf_llama2.server import ServerHandle

from .conftest import TOKEN

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is the capital of Italy?",
    "Name two colours.",
    "What is 3 plus 4?",
    "Say hello in French.",
    "Which planet is the largest?",
    "Give me one word that rhymes with cat.",
    "What do bees make?",
    "How many days are in a week?",
]


def _ask(server: ServerHandle, question: str, stream: bool) -> dict[str, Any]:
    body = {
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 12,
        "temperature": 0,
        "stream": stream,
    }
    url = server.run_url("@cf/meta/llama-2-7b-chat-int8")
    headers = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(timeout=300) as http:
        if not stream:
            response = http.post(url, json=body, headers=headers)
            response.raise_for_status()
            result: dict[str, Any] = response.json()["result"]
            return {"text": result["response"], "tokens": result["usage"]["completion_tokens"]}
        text, done = "", False
        with http.stream("POST", url, json=body, headers=headers) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    text += httpx.Response(200, content=line[6:]).json().get("response") or ""
        return {"text": text, "done": done}


def test_eight_concurrent_clients_all_complete_with_their_own_answers(
    local_server: ServerHandle,
) -> None:
    results: list[Any] = [None] * len(QUESTIONS)
    start = threading.Barrier(len(QUESTIONS))

    def client(i: int) -> None:
        start.wait()
        try:
            results[i] = _ask(local_server, QUESTIONS[i], stream=bool(i % 2))
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not [r for r in results if isinstance(r, Exception)]
    assert all(r["text"].strip() for r in results)  # nobody got an empty answer
    assert all(1 <= r["tokens"] <= 12 for r in results[0::2])  # usage counted
    assert all(r["done"] for r in results[1::2])  # every stream ended with [DONE]
