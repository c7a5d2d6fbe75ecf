"""What every call made with one settings object shares, built once: the URL and the headers.

Parsing the endpoint URL costs httpx more than the rest of building a request, and the bearer
header reads the secret each time; neither changes while the settings stay the same. An
:class:`Endpoint` holds them for one :class:`~.config.RemoteSettings` object (settings are
frozen: new credentials from the environment make a new settings object, hence a new endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .config import RemoteSettings

__all__ = ["BakedAsyncClient", "BakedClient", "Endpoint", "call_headers"]


@dataclass(frozen=True)
class Endpoint:
    """The parsed URL and the base headers of the calls made with ``settings``.

    ``repr`` leaves the headers out (they hold the token). The header mappings are shared:
    copy one before adding to it.
    """

    settings: RemoteSettings
    url: str
    target: httpx.URL
    json_headers: Mapping[str, str]
    stream_headers: Mapping[str, str]
    complete: bool
    """Whether both credentials are set (else the first request raises, naming them)."""

    @classmethod
    def of(cls, settings: RemoteSettings) -> Endpoint:
        """The endpoint of ``settings`` (pure; parses the URL once)."""
        headers = settings.request_headers()
        url = settings.url
        return cls(
            settings=settings,
            url=url,
            target=httpx.URL(url),
            json_headers=headers,
            stream_headers={**headers, "Accept": "text/event-stream"},
            complete=settings.missing_credentials() is None,
        )

    def headers(self, *, stream: bool) -> dict[str, str]:
        """A fresh copy of the headers of a JSON (or, with ``stream``, SSE) call."""
        return dict(self.stream_headers if stream else self.json_headers)

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r})"


class BakedClient(httpx.Client):
    """An ``httpx.Client`` of the backend's own, made with an endpoint's JSON headers as its
    defaults: a call that sends exactly those passes none (merging per-call headers into the
    client's is the costliest step of building an httpx request; the result is the same)."""

    def __init__(self, *, baked: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(headers=dict(baked), **kwargs)
        self.baked: Mapping[str, str] = dict(baked)


class BakedAsyncClient(httpx.AsyncClient):
    """The async twin of :class:`BakedClient`."""

    def __init__(self, *, baked: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(headers=dict(baked), **kwargs)
        self.baked: Mapping[str, str] = dict(baked)


def call_headers(
    client: httpx.Client | httpx.AsyncClient, headers: Mapping[str, str]
) -> Mapping[str, str] | None:
    """The headers to pass when building a request on ``client``: ``None`` when the client
    sends exactly these by default (a :class:`BakedClient`), else ``headers``."""
    baked = getattr(client, "baked", None)
    return None if baked is not None and baked == headers else headers
