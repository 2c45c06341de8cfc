"""Settings from the environment: required secrets, parsing, and secrets never shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import CacheMode, Settings, describe_validation_error

REQUIRED = {
    "PROMPT_UPSTREAM_API_KEY": "sk-test-config-key",
    "PROMPT_REDIS_URL": "redis://:redis-password@redis:6379/0",
    "PROMPT_DATABASE_URL": "postgresql://ledger:db-password@db/ledger",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_secrets_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(ValidationError) as error:
        Settings()

    assert describe_validation_error(error.value).splitlines() == [
        "PROMPT_UPSTREAM_API_KEY: Field required",
        "PROMPT_REDIS_URL: Field required",
        "PROMPT_DATABASE_URL: Field required",
    ]


def test_empty_secret_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROMPT_UPSTREAM_API_KEY", " ")

    with pytest.raises(ValidationError, match="must not be empty"):
        Settings()


def test_values_are_parsed_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROMPT_FALLBACK_MODELS", "model-b, model-c")
    env.setenv("PROMPT_SERVICE_API_KEYS", "key-one,key-two")
    env.setenv("PROMPT_PRICES", '{"model-a": {"prompt": 0.15, "completion": 0.6}}')
    env.setenv("PROMPT_CACHE_MODE", "always")
    env.setenv("PROMPT_UPSTREAM_BASE_URL", "http://vllm:8000/v1/")

    settings = Settings()

    assert settings.fallback_models == ["model-b", "model-c"]
    assert [k.get_secret_value() for k in settings.service_api_keys] == ["key-one", "key-two"]
    assert settings.prices["model-a"].completion == 0.6
    assert settings.cache_mode is CacheMode.ALWAYS
    assert settings.upstream_base_url == "http://vllm:8000/v1"


def test_secrets_never_appear_in_repr_or_dumps(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROMPT_SERVICE_API_KEYS", "client-key-123")
    settings = Settings()

    shown = repr(settings) + str(settings) + settings.model_dump_json()

    for secret in ("sk-test-config-key", "redis-password", "db-password", "client-key-123"):
        assert secret not in shown


def test_invalid_values_are_reported_without_their_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROMPT_PRICES", '{"model-a": {"prompt": "very-secret-value"}}')

    with pytest.raises(ValidationError) as error:
        Settings()

    assert "very-secret-value" not in str(error.value)
    assert "very-secret-value" not in describe_validation_error(error.value)
    assert describe_validation_error(error.value).startswith("PROMPT_PRICES: ")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PROMPT_SERVICE_NAME", "Not A Label", "must be a DNS label"),
        ("PROMPT_UPSTREAM_BASE_URL", "ftp://x", "must be an http:// or https:// URL"),
        ("PROMPT_ALLOWED_MODELS", "model-x", "not in allowed_models"),
        ("PROMPT_CACHE_MODE", "sometimes", "Input should be"),
        ("PROMPT_MAX_BODY_BYTES", "10", "greater than or equal to 1024"),
    ],
)
def test_invalid_settings_name_the_problem(
    env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    env.setenv(name, value)

    with pytest.raises(ValidationError, match=message):
        Settings()
