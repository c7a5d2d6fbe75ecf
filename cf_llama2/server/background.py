"""Run the server in a background thread on loopback: for tests, notebooks and examples.

Example:
    >>> from cf_llama2.server import serve_in_thread
    >>> from cf_llama2.testing import ScriptedBackend
    >>> with serve_in_thread(ScriptedBackend(["Hi"])) as server:  # doctest: +SKIP
    ...     print(server.base_url)
    http://127.0.0.1:54321/client/v4
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from ..backends.base import Backend
from ..errors import ConfigurationError, ServerError
from .app import create_app
from .connections import ConnectionLimits, uvicorn_config
from .lifecycle import GracefulServer, ShutdownGate

__all__ = ["ServerHandle", "bind_socket", "serve_in_thread"]


class ServerHandle:
    """A running background server.

    Attributes:
        host: the bound host.
        port: the bound port (the real one when 0 was asked for).
        base_url: the Workers AI base URL to give clients,
            ``http://HOST:PORT/client/v4``.
        app: the ASGI app being served.
    """

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int, app: Any
    ) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.app = app
        url_host = f"[{host}]" if ":" in host else host
        self.origin = f"http://{url_host}:{port}"
        self.base_url = f"{self.origin}/client/v4"

    def __repr__(self) -> str:
        return f"ServerHandle(base_url={self.base_url!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the server thread is still alive."""
        return self._thread.is_alive()

    def run_url(self, model: str, account_id: str = "local") -> str:
        """The full ``/ai/run`` URL for ``model``."""
        return f"{self.base_url}/accounts/{account_id}/ai/run/{model}"

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully: stop admitting, let running requests finish, then return.

        Requests not yet running get 503 (code 3040, ``Retry-After``). Requests still running
        after the grace period are ended: a stream with an error event and a clean end, any
        other request with the same 503; their generation stops. Calling ``stop`` twice is
        harmless.

        Raises:
            ServerError: the server thread did not end within ``timeout`` seconds.
        """
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5.0)
            if self._thread.is_alive():
                raise ServerError(f"the server on {self.origin} did not stop within {timeout} s")


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free one), ready for uvicorn.

    Raises:
        ConfigurationError: the address is taken or cannot be bound (the message says why).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another port "
            "(port=0 picks a free one)"
        ) from None
    # Listen at once, so clients told the address can connect (they wait in the backlog until
    # the server accepts) instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@contextmanager
def serve_in_thread(
    backend_or_app: Backend | Mapping[str, Backend] | Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_token: str | None = None,
    startup_timeout: float = 30.0,
    graceful_timeout: float = 5.0,
    limits: ConnectionLimits | None = None,
    **app_options: Any,
) -> Iterator[ServerHandle]:
    """Serve a backend (or a ready app) with uvicorn in a daemon thread.

    Args:
        backend_or_app: a backend, a ``{model name: backend}`` mapping, or an app from
            :func:`~cf_llama2.server.create_app` (then ``api_token`` and ``app_options`` must
            be left out).
        host: the interface to bind (loopback by default).
        port: the port; ``0`` picks a free one (see ``handle.port``).
        api_token: the bearer token clients must send; ``None`` accepts any.
        startup_timeout: seconds to wait for the server to accept connections.
        graceful_timeout: seconds in-flight requests get to finish on shutdown; then open
            streams end with an error event and other requests get 503.
        limits: connection limits (concurrency cap, keep-alive, request-head deadline).
        **app_options: more :func:`~cf_llama2.server.create_app` options (``max_queue``,
            ``max_concurrency``, ``max_body_bytes``, ...).

    Yields:
        A :class:`ServerHandle`; the server stops when the block exits.

    Raises:
        ConfigurationError: the port is taken, or options were given with a ready app.
        ServerError: the server did not start within ``startup_timeout``.
    """
    if isinstance(backend_or_app, Starlette):
        if api_token is not None or app_options:
            raise ConfigurationError(
                "serve_in_thread got a ready app together with api_token or app options; "
                "pass those to create_app instead"
            )
        app: Starlette = backend_or_app
    else:
        app = create_app(backend_or_app, api_token=api_token, **app_options)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn_config(
        app, limits or ConnectionLimits(), log_config=None, log_level="warning", access_log=False
    )
    gate = getattr(app.state, "gate", None)
    server = GracefulServer(config, gate if gate is not None else ShutdownGate(), graceful_timeout)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"cf-llama2-server-{bound_port}", daemon=True)
    thread.start()
    handle = ServerHandle(server, thread, host, bound_port, app)
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if failure or not thread.is_alive():
                raise ServerError(
                    f"the server on {host}:{bound_port} failed to start: "
                    f"{failure[0] if failure else 'it exited'}"
                )
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the server on {host}:{bound_port} did not start within {startup_timeout} s"
                )
            time.sleep(0.01)
        yield handle
    finally:
        handle.stop()
        sock.close()
