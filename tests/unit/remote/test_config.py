"""Settings: credentials from arguments or the environment, URLs, no secret in any output."""

from __future__ import annotations

import json
import pickle

import pytest

from cf_llama2.backends.remote import RemoteBackend
from cf_llama2.backends.remote.config import RemoteSettings
from cf_llama2.errors import ConfigurationError

TOKEN = "tok-SECRET-1234567890"
ENV_NAMES = ("CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CF_AI_API_TOKEN")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "env-account")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "env-token")
    settings = RemoteSettings.resolve("arg-account", TOKEN)
    assert settings.account_id == "arg-account"
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    ("account_env", "token_env"),
    [("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"), ("CF_ACCOUNT_ID", "CF_AI_API_TOKEN")],
)
def test_both_sets_of_environment_names(
    monkeypatch: pytest.MonkeyPatch, account_env: str, token_env: str
) -> None:
    monkeypatch.setenv(account_env, "acc")
    monkeypatch.setenv(token_env, TOKEN)
    settings = RemoteSettings.resolve()
    assert settings.account_id == "acc"
    assert settings.missing_credentials() is None
    assert settings.request_headers()["Authorization"] == f"Bearer {TOKEN}"


def test_cloudflare_names_win_over_the_langchain_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "first")
    monkeypatch.setenv("CF_ACCOUNT_ID", "second")
    assert RemoteSettings.resolve().account_id == "first"


def test_missing_credentials_name_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = RemoteSettings.resolve()
    error = settings.missing_credentials()
    assert isinstance(error, ConfigurationError)
    for name in ENV_NAMES:
        assert name in str(error)
    # Set later: picked up without rebuilding.
    monkeypatch.setenv("CF_ACCOUNT_ID", "acc")
    monkeypatch.setenv("CF_AI_API_TOKEN", TOKEN)
    assert settings.with_env_credentials().missing_credentials() is None


def test_urls() -> None:
    model = "@cf/meta/llama-2-7b-chat-int8"
    assert RemoteSettings.resolve("acc", TOKEN).url == (
        f"https://api.cloudflare.com/client/v4/accounts/acc/ai/run/{model}"
    )
    local = RemoteSettings.resolve("acc", TOKEN, base_url="http://127.0.0.1:8787/client/v4/")
    assert local.url == f"http://127.0.0.1:8787/client/v4/accounts/acc/ai/run/{model}"
    gateway = RemoteSettings.resolve("acc", TOKEN, gateway="my-gw", model="@cf/x/y")
    assert gateway.url == "https://gateway.ai.cloudflare.com/v1/acc/my-gw/workers-ai/@cf/x/y"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"gateway": "a/b"}, "gateway"),
        ({"tool_format": "xml"}, "tool_format"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_options_raise_configuration_errors(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field):
        RemoteSettings.resolve("acc", TOKEN, **options)


def test_the_token_never_shows() -> None:
    settings = RemoteSettings.resolve(
        "acc", TOKEN, headers={"cf-aig-authorization": f"Bearer {TOKEN}", "cf-aig-skip-cache": "1"}
    )
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    dumped = json.dumps(settings.public_dict())
    assert TOKEN not in dumped
    assert TOKEN not in settings.model_dump_json()
    assert "cf-aig-skip-cache" in dumped
    assert TOKEN not in str(settings.model_dump())
    # The live settings still send it.
    assert settings.request_headers()["Authorization"] == f"Bearer {TOKEN}"
    assert pickle.loads(pickle.dumps(settings)).request_headers()["Authorization"].endswith(TOKEN)


def test_every_custom_header_value_is_masked_in_repr_and_dumps() -> None:
    secret = "gw-pass-0123456789"
    settings = RemoteSettings.resolve(
        "acc", TOKEN, headers={"x-gateway-pass": secret, "cf-aig-authorization": secret}
    )
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        json.dumps(settings.public_dict()),
        repr(RemoteBackend("acc", TOKEN, headers={"x-gateway-pass": secret})),
    ):
        assert secret not in shown
    assert "x-gateway-pass" in repr(settings)  # the names stay visible
    assert settings.request_headers()["x-gateway-pass"] == secret  # and are still sent
