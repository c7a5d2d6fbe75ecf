"""Settings of the remote backend: credentials, endpoint, timeouts, retries.

Credentials come from arguments or the environment: ``CLOUDFLARE_ACCOUNT_ID`` /
``CLOUDFLARE_API_TOKEN`` (Cloudflare's own names) or ``CF_ACCOUNT_ID`` / ``CF_AI_API_TOKEN``
(the names langchain-cloudflare users already have set). The token is a pydantic ``SecretStr``:
it never shows in ``repr``, ``str``, ``model_dump`` output or error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from ...errors import ConfigurationError

__all__ = [
    "ACCOUNT_ID_ENV",
    "API_TOKEN_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_MODEL",
    "DEFAULT_SERVED_MODEL",
    "RemoteSettings",
]

DEFAULT_MODEL = "@cf/meta/llama-2-7b-chat-int8"
DEFAULT_SERVED_MODEL = DEFAULT_MODEL
"""The name a single backend is served under by ``cf-llama2 serve``: the Workers AI id."""
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_GATEWAY_URL = "https://gateway.ai.cloudflare.com/v1"
ACCOUNT_ID_ENV = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID")
API_TOKEN_ENV = ("CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN")

_MASK = "**********"


def _from_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class RemoteSettings(BaseModel):
    """Validated settings of :class:`~cf_llama2.backends.remote.RemoteBackend`.

    Attributes:
        account_id: the Cloudflare account id (``None`` until found; checked at first request).
        api_token: the API token, as a ``SecretStr``.
        model: the Workers AI model id; it keeps its slashes in the URL.
        base_url: the API root, e.g. ``http://127.0.0.1:8787/client/v4`` for a local server.
        gateway: an AI Gateway id; requests then go through the gateway.
        timeout: seconds for connecting and for each read (> 0).
        max_retries: retries on 408/429/5xx/connection errors (>= 0).
        tool_format: ``"function"`` or ``"flat"``: the form tools are sent in.
        headers: extra request headers; every value is masked in ``repr`` and dumps (gateway
            headers such as ``cf-aig-authorization`` carry secrets), the names stay visible.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str | None = None
    api_token: SecretStr | None = None
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    base_url: str | None = None
    gateway: str | None = None
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    tool_format: Literal["function", "flat"] = "function"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("account_id", "gateway")
    @classmethod
    def _path_segment(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v or "/" in v or any(c.isspace() for c in v):
            raise ValueError("must be a non-empty id without '/' or spaces")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v

    @field_serializer("headers")
    def _mask_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {k: _MASK for k in headers}

    def __repr_args__(self) -> Any:
        yield from super().__repr_args__()
        if self.headers:
            yield "headers", self._mask_headers(self.headers)

    @classmethod
    def resolve(
        cls,
        account_id: str | None = None,
        api_token: str | SecretStr | None = None,
        **options: Any,
    ) -> RemoteSettings:
        """Build settings from arguments, filling missing credentials from the environment.

        Raises:
            ConfigurationError: an option is malformed (the message names it and the fix).
        """
        account = account_id if account_id is not None else _from_env(ACCOUNT_ID_ENV)
        token = api_token if api_token is not None else _from_env(API_TOKEN_ENV)
        if isinstance(token, str):
            token = SecretStr(token)
        options = {k: v for k, v in options.items() if v is not None}
        try:
            return cls(account_id=account, api_token=token, **options)
        except ValidationError as exc:
            problems = []
            for item in exc.errors(include_url=False, include_input=False):
                where = ".".join(str(p) for p in item.get("loc", ()))
                msg = str(item.get("msg", "invalid")).removeprefix("Value error, ")
                problems.append(f"{where}: {msg}")
            raise ConfigurationError(
                "Invalid RemoteBackend settings: " + "; ".join(problems)
            ) from None

    def with_env_credentials(self) -> RemoteSettings:
        """These settings with missing credentials filled from the environment, if set now."""
        update: dict[str, Any] = {}
        if self.account_id is None and (account := _from_env(ACCOUNT_ID_ENV)):
            update["account_id"] = account
        if self.api_token is None and (token := _from_env(API_TOKEN_ENV)):
            update["api_token"] = SecretStr(token)
        return self.model_copy(update=update) if update else self

    def missing_credentials(self) -> ConfigurationError | None:
        """The error to raise when a credential is missing, else ``None``."""
        missing = []
        if self.account_id is None:
            missing.append(
                "the account id: pass account_id= or set CLOUDFLARE_ACCOUNT_ID (or CF_ACCOUNT_ID)"
            )
        if self.api_token is None or not self.api_token.get_secret_value():
            missing.append(
                "the API token: pass api_token= or set CLOUDFLARE_API_TOKEN (or CF_AI_API_TOKEN)"
            )
        if not missing:
            return None
        return ConfigurationError(
            "Workers AI credentials are missing: " + "; ".join(missing) + ". Or use the local "
            "backend (backend='local') which needs none."
        )

    @property
    def url(self) -> str:
        """The endpoint URL for :attr:`model` (through the gateway when one is set)."""
        account = self.account_id or "{account_id}"
        if self.gateway:
            root = self.base_url or DEFAULT_GATEWAY_URL
            return f"{root}/{account}/{self.gateway}/workers-ai/{self.model}"
        root = self.base_url or DEFAULT_BASE_URL
        return f"{root}/accounts/{account}/ai/run/{self.model}"

    def request_headers(self) -> dict[str, str]:
        """Headers for one request: JSON content, the bearer token and the extra headers."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.headers)
        if self.api_token is not None:
            headers["Authorization"] = f"Bearer {self.api_token.get_secret_value()}"
        return headers

    def public_dict(self) -> Mapping[str, Any]:
        """The settings as a JSON-ready dict with secrets masked."""
        return self.model_dump(mode="json")
