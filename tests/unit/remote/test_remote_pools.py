"""Async calls share one pooled client per event loop; pools end with their loop or the backend."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Iterator

import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.schema import ChatRequest
from tests.support.workers_ai_fake import Reply, WorkersAIFake, ok_envelope

ASK = ChatRequest(messages=[{"role": "user", "content": "Hi"}])  # type: ignore[list-item]


@pytest.fixture
def fake() -> Iterator[WorkersAIFake]:
    with WorkersAIFake(*[Reply(body=ok_envelope("ok")) for _ in range(40)]) as server:
        yield server


def _ports(fake: WorkersAIFake) -> list[int]:
    return [r.client_port for r in fake.requests]


def _backend(fake: WorkersAIFake) -> RemoteBackend:
    return RemoteBackend("acc", "token-123456", base_url=fake.base_url)


def test_calls_on_one_loop_reuse_one_connection(fake: WorkersAIFake) -> None:
    backend = _backend(fake)

    async def three() -> None:
        for _ in range(3):
            assert (await backend.arun(ASK)).response == "ok"
        assert [e async for e in backend.astream(ASK)]

    asyncio.run(three())
    assert len(set(_ports(fake))) == 1  # one TCP connection for four calls
    assert len(backend._aclients) == 0  # closed with its loop by asyncio.run's shutdown


def test_each_asyncio_run_gets_its_own_pool_and_closes_it(fake: WorkersAIFake) -> None:
    backend = _backend(fake)
    for _ in range(3):
        assert asyncio.run(backend.arun(ASK)).response == "ok"
        assert len(backend._aclients) == 0
    assert len(set(_ports(fake))) == 3  # a new loop cannot use the last loop's sockets


def _client_sockets(fake: WorkersAIFake) -> int:
    """Open sockets of this process connected *to* the fake (its own accepted ends excluded).

    Counting every fd would also count the server's side of a connection, which the fake's
    thread closes a moment later, and anything other threads of the test run open meanwhile.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == fake.port and fields[9] in inodes:
                    count += 1
    return count


# asyncio's own transport object of a loop closed without shutdown warns when collected, even
# though the backend already closed its socket (the fd count below proves that).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds through /proc")
@pytest.mark.parametrize("then", ["call", "close"])
def test_a_loop_closed_without_shutdown_leaks_no_socket_and_raises_nothing(
    fake: WorkersAIFake, then: str
) -> None:
    backend = _backend(fake)
    gc.collect()
    before = _client_sockets(fake)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(backend.arun(ASK)).response == "ok"
    loop.close()  # no shutdown_asyncgens(): the pool outlives its loop
    assert len(backend._aclients) == 1
    assert _client_sockets(fake) > before  # the pool's socket is still open
    if then == "call":
        assert asyncio.run(backend.arun(ASK)).response == "ok"  # finds and drops the dead pool
    else:
        backend.close()
    assert len(backend._aclients) == 0
    assert _client_sockets(fake) <= before  # released at once, not at garbage collection
    del loop
    gc.collect()


async def test_aclose_closes_the_running_loops_pool(fake: WorkersAIFake) -> None:
    backend = _backend(fake)
    await backend.arun(ASK)
    client = await backend._aclients.get()
    await backend.aclose()
    assert client.is_closed
    assert len(backend._aclients) == 0
    assert (await backend.arun(ASK)).response == "ok"  # usable again: a new pool
    await backend.aclose()


def test_close_from_another_thread_closes_a_pool_on_a_running_loop(fake: WorkersAIFake) -> None:
    backend = _backend(fake)
    ready, done = threading.Event(), threading.Event()
    clients = []

    async def serve() -> None:
        await backend.arun(ASK)
        clients.append(await backend._aclients.get())
        ready.set()
        for _ in range(200):  # bounded: at most 10 s
            if clients[0].is_closed:
                break
            await asyncio.sleep(0.05)
        done.set()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    assert ready.wait(10)
    backend.close()
    assert done.wait(15)
    thread.join(10)
    assert clients[0].is_closed


def test_concurrent_calls_on_one_loop_share_the_pool(fake: WorkersAIFake) -> None:
    backend = _backend(fake)

    async def eight() -> list[str]:
        return [r.response for r in await asyncio.gather(*(backend.arun(ASK) for _ in range(8)))]

    assert asyncio.run(eight()) == ["ok"] * 8
    assert len(set(_ports(fake))) <= 8
