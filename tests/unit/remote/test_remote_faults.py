"""The remote client under a hostile or flaky server: deadlines, drops, echoed secrets, 404s."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.backends.remote.retry import RetryPolicy
from cf_llama2.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    EndpointNotFoundError,
    IncompleteStreamError,
    ModelNotFoundError,
    ServerError,
)
from cf_llama2.schema import ChatRequest
from tests.support.raw_server import RawServer, http_response
from tests.support.workers_ai_fake import (
    Sleep,
    StreamReply,
    WorkersAIFake,
    error_envelope,
    ok_envelope,
)

TOKEN = "tok-0123456789abcdef-secret"
ASK = ChatRequest(messages=[{"role": "user", "content": "Hi"}])  # type: ignore[list-item]
OK = json.dumps(ok_envelope("fine " * 40)).encode()
SSE = b"".join(b'data: {"response":"word %d "}\n\n' % i for i in range(20)) + b"data: [DONE]\n\n"
FAST = RetryPolicy(initial_delay=0.001, max_delay=0.005)


def _backend(server: RawServer, **kwargs: Any) -> RemoteBackend:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("retry_policy", FAST)
    return RemoteBackend("acc", TOKEN, base_url=server.base_url, **kwargs)


async def _call(backend: RemoteBackend, mode: str) -> str:
    """One call in ``mode``: run, stream, arun or astream; the answer text."""
    if mode == "run":
        return backend.run(ASK).response
    if mode == "arun":
        return (await backend.arun(ASK)).response
    if mode == "stream":
        return "".join(getattr(e, "text", "") for e in backend.stream(ASK))
    return "".join([getattr(e, "text", "") async for e in backend.astream(ASK)])


MODES = ["run", "stream", "arun", "astream"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("what", ["everything", "body"])
async def test_a_trickling_server_cannot_stretch_the_deadline(mode: str, what: str) -> None:
    # 4 bytes a second; the whole answer would take over a minute. With timeout=1 the client
    # must leave after about 4 bytes (the bound below leaves a 5x margin for a loaded machine).
    streamed = mode in ("stream", "astream")
    body = SSE if streamed else OK
    kind = "text/event-stream" if streamed else "application/json"
    response = http_response(body, content_type=kind)
    prefix = 0 if what == "everything" else len(response) - len(body)
    with RawServer(lambda _: response, pace=0.25, fast_prefix=prefix) as server:
        backend = _backend(server, timeout=1)
        with pytest.raises(APITimeoutError) as info:
            await _call(backend, mode)
        await backend.aclose()
    error = info.value
    assert error.status_code is None
    assert error.timeout == 1
    assert "(HTTP 408" not in str(error)
    assert "timeout=1 s" in str(error)
    assert server.sent[0] - prefix <= 20


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_stream_that_stalls_after_events_is_incomplete(mode: str) -> None:
    first = b'data: {"response":"Hello"}\n\n'
    response = http_response(first + b"data: {", content_type="text/event-stream")
    with RawServer(lambda _: response, pace=0.5, fast_prefix=len(response) - 7) as server:
        backend = _backend(server, timeout=1)
        with pytest.raises(IncompleteStreamError) as info:
            await _call(backend, mode)
        await backend.aclose()
    assert info.value.partial_text == "Hello"
    assert "no event for 1 s" in str(info.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
async def test_a_drop_mid_answer_is_not_called_unreachable(mode: str) -> None:
    # Headers and 10 bytes of a 2 KB answer, then the server closes the connection.
    response = http_response(b"x" * 2048, content_type="application/json")
    cut = len(response) - 2048 + 10
    with RawServer(lambda _: response, cut_after=cut) as server:
        backend = _backend(server)
        with pytest.raises(APIConnectionError) as info:
            await _call(backend, mode)
        await backend.aclose()
    assert "dropped in the middle of the answer" in str(info.value)
    assert "could not reach" not in str(info.value)


@pytest.mark.parametrize("retries", [0, 2])
async def test_a_server_error_says_whether_it_was_retried(retries: int) -> None:
    envelope = json.dumps(error_envelope((3043, "internal"))).encode()
    response = http_response(envelope, status="500 Internal Server Error")
    with RawServer(lambda _: response) as server:
        backend = _backend(server, max_retries=retries)
        with pytest.raises(ServerError) as info:
            backend.run(ASK)
        backend.close()
    text = str(info.value)
    assert "retried automatically" not in text
    assert len(server.requests) == retries + 1
    if retries:
        assert "Gave up after 2 retries (max_retries=2)." in text
    else:
        assert "Not retried (max_retries=0)." in text


ECHO = (
    f'{{"success": false, "result": null, "errors": [{{"code": 10000, "message": '
    f'"bad header Authorization: Bearer {TOKEN} (token {TOKEN})"}}], "messages": []}}'
).encode()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "body", [ECHO, b"<html>denied for Bearer abc.def-ghi and " + TOKEN.encode()]
)
async def test_an_echoed_token_is_redacted_everywhere(mode: str, body: bytes) -> None:
    response = http_response(body, status="401 Unauthorized")
    with RawServer(lambda _: response) as server:
        backend = _backend(server)
        with pytest.raises(APIError) as info:
            await _call(backend, mode)
        await backend.aclose()
    error = info.value
    seen = [str(error), repr(error), repr(error.errors), repr(error.body), repr(error.args)]
    import traceback

    seen.append("".join(traceback.format_exception(error)))
    for text in seen:
        assert TOKEN not in text
        assert "abc.def-ghi" not in text
    assert "**********" in str(error)


async def test_custom_secret_headers_are_redacted_from_errors() -> None:
    gateway_secret = "gw-secret-value-42"
    body = f'{{"errors": [{{"code": 1, "message": "rejected {gateway_secret}"}}]}}'.encode()
    response = http_response(body, status="403 Forbidden")
    with RawServer(lambda _: response) as server:
        backend = _backend(server, headers={"cf-aig-authorization": gateway_secret})
        with pytest.raises(APIError) as info:
            backend.run(ASK)
        backend.close()
    assert gateway_secret not in str(info.value)
    assert gateway_secret not in repr(info.value.errors)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Not Found</html>", EndpointNotFoundError),
        (b'{"errors": [{"code": 7003, "message": "Could not route"}]}', EndpointNotFoundError),
        (json.dumps(error_envelope((3042, "Invalid model"))).encode(), ModelNotFoundError),
    ],
)
def test_a_404_without_the_model_error_is_a_wrong_url(body: bytes, expected: type) -> None:
    response = http_response(body, status="404 Not Found", content_type="text/html")
    with RawServer(lambda _: response) as server:
        backend = _backend(server)
        with pytest.raises(APIError) as info:
            backend.run(ASK)
        backend.close()
        url = server.base_url
    assert type(info.value) is expected
    text = str(info.value)
    if expected is EndpointNotFoundError:
        assert "retired" not in text
        assert "base_url=" in text
        assert url in text
    else:
        assert "deprecation" in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_stream_longer_than_timeout_lives_while_events_keep_coming(mode: str) -> None:
    # Six events 0.4 s apart: 2.4 s in all with timeout=1, never 1 s without an event.
    events: list[Any] = []
    for i in range(6):
        events += [Sleep(0.4), {"response": f"w{i} "}]
    with WorkersAIFake(StreamReply(events=events)) as fake:
        backend = RemoteBackend("acc", TOKEN, base_url=fake.base_url, timeout=1, max_retries=0)
        text = await _call(backend, mode)
        await backend.aclose()
    assert text == "".join(f"w{i} " for i in range(6))
