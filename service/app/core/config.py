"""Service settings, read from the environment (prefix ``PROMPT_``).

Every setting is documented by its ``description``; ``settings_markdown_table`` renders the
README's configuration table from this class, and a test fails when the two drift apart.

Secrets (``SecretStr``) are required and have no default: the service refuses to start
without them, and their values never reach a log line, an error message or ``repr``.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "PROMPT_"

_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class CacheMode(enum.StrEnum):
    """Which requests are cached when the client sends no ``Cache-Control``."""

    DETERMINISTIC = "deterministic"
    ALWAYS = "always"
    OFF = "off"


class ModelPrice(BaseModel):
    """USD per one million tokens."""

    model_config = {"extra": "forbid", "frozen": True}

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All configuration of one prompt service."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
        # A malformed secret must not be echoed in the start-up error.
        hide_input_in_errors=True,
    )

    # --- service -------------------------------------------------------------------------
    service_name: str = Field(
        default="prompt-service",
        description="Name of this prompt service: scopes cache keys and labels ledger rows.",
    )
    host: str = Field(default="0.0.0.0", description="Address uvicorn binds.")  # noqa: S104
    port: int = Field(default=8000, ge=1, le=65535, description="Port uvicorn binds.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Level of the JSON logs on stdout."
    )
    service_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated keys clients send as `Authorization: Bearer <key>`. "
            "Empty: no authentication (use only behind an authenticating gateway)."
        ),
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted; larger gets 413."
    )
    max_in_flight: int = Field(
        default=256,
        ge=1,
        description="Requests handled at once; more get 503 `overloaded` (probes excepted).",
    )
    shutdown_grace_seconds: int = Field(
        default=20,
        ge=0,
        description=(
            "On SIGTERM, time in-flight requests get to finish before they are cancelled. "
            "Keep it below the pod's terminationGracePeriodSeconds."
        ),
    )
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="Idle keep-alive of client connections; keep it above the ingress's.",
    )
    templates_file: Path | None = Field(
        default=None,
        description="YAML file of prompt templates (mounted ConfigMap). Unset: no templates.",
    )

    # --- upstream ------------------------------------------------------------------------
    upstream_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="Base URL of the OpenAI-compatible upstream (up to and including `/v1`).",
    )
    upstream_api_key: SecretStr = Field(description="API key for the upstream. Required secret.")
    default_model: str = Field(
        default="gpt-4o-mini", min_length=1, description="Model used when a request names none."
    )
    fallback_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated models tried in order when the requested model keeps failing "
            "with a retryable error or its circuit breaker is open."
        ),
    )
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated models clients may request. Empty: any model.",
    )
    default_max_tokens: int | None = Field(
        default=None, ge=1, description="`max_tokens` sent when a request sets none."
    )
    default_temperature: float | None = Field(
        default=None, ge=0, le=2, description="`temperature` sent when a request sets none."
    )
    upstream_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Time to open a connection to the upstream."
    )
    upstream_read_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest silence from the upstream while reading an answer or a stream.",
    )
    upstream_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Deadline for an answer (for a stream: its first chunk), retries and fallbacks "
            "included. Past it the client gets 504."
        ),
    )
    upstream_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries per model on 408, 429, 5xx, connection errors and timeouts.",
    )
    upstream_retry_backoff_seconds: float = Field(
        default=0.25, ge=0, description="First retry delay; doubles per retry, with full jitter."
    )
    upstream_retry_backoff_max_seconds: float = Field(
        default=4.0, ge=0, description="Largest delay between two retries."
    )
    upstream_retry_after_max_seconds: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Longest upstream `Retry-After` the service waits out; a longer one goes to the "
            "next fallback model or back to the client as 429."
        ),
    )
    upstream_max_connections: int = Field(
        default=100, ge=1, description="Connection pool size towards the upstream."
    )
    upstream_stream_usage_required: bool = Field(
        default=True,
        description=(
            "Treat a stream that ends without the final usage chunk as interrupted (error "
            "event, not cached, failed ledger row). The service always asks for it, and it is "
            "the only sign that a stream cut after its last token was complete. Turn off for "
            "upstreams that ignore `stream_options.include_usage` (they are then recorded "
            "with 0 tokens and counted in `upstream_usage_missing_total`)."
        ),
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive failures (5xx, connection, timeout) that open a model's breaker.",
    )
    breaker_open_seconds: float = Field(
        default=30.0, gt=0, description="Time a breaker stays open before one probe is let through."
    )

    # --- cache -----------------------------------------------------------------------------
    redis_url: SecretStr = Field(
        description="Redis URL, e.g. `redis://:password@redis:6379/0`. Required secret."
    )
    cache_mode: CacheMode = Field(
        default=CacheMode.DETERMINISTIC,
        description=(
            "What is cached without `Cache-Control`: `deterministic` (temperature 0), "
            "`always`, or `off`."
        ),
    )
    cache_ttl_seconds: int = Field(default=3600, ge=1, description="Lifetime of a cached answer.")
    cache_namespace: str = Field(
        default="v1",
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        description="Part of every cache key: change it to drop the whole cache of this service.",
    )
    cache_max_entry_bytes: int = Field(
        default=1_048_576, ge=1, description="Answers larger than this are not cached."
    )
    cache_lock_seconds: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Lifetime of the Redis lock that makes replicas share one upstream call for "
            "identical concurrent misses. 0: share only within one replica."
        ),
    )
    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, description="Timeout of every Redis operation."
    )
    redis_retry_seconds: float = Field(
        default=2.0,
        ge=0,
        description="After a Redis failure, the cache is bypassed this long before a new try.",
    )

    # --- usage ledger -----------------------------------------------------------------------
    database_url: SecretStr = Field(
        description=(
            "PostgreSQL DSN of the usage ledger, e.g. `postgresql://user:pw@db/ledger`. "
            "Required secret."
        )
    )
    database_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Timeout to connect to PostgreSQL."
    )
    ledger_max_pending: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Ledger rows kept in memory while PostgreSQL is slow or down; "
            "more are dropped and counted."
        ),
    )
    ledger_batch_size: int = Field(default=500, ge=1, description="Rows written per COPY batch.")
    ledger_flush_interval_seconds: float = Field(
        default=1.0, gt=0, description="Longest time a ledger row waits before it is written."
    )
    ledger_retry_max_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait between two attempts to write to a failing PostgreSQL.",
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description=(
            'JSON price table, USD per million tokens: `{"gpt-4o-mini": {"prompt": 0.15, '
            '"completion": 0.6}}`. A dated model name (`gpt-4o-mini-2024-07-18`) uses the '
            "longest matching prefix."
        ),
    )

    @field_validator("service_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("fallback_models", "allowed_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("service_name")
    @classmethod
    def _check_service_name(cls, value: str) -> str:
        if not _SERVICE_NAME.match(value):
            raise ValueError("must be a DNS label: lowercase letters, digits and '-', at most 63")
        return value

    @field_validator("upstream_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("upstream_api_key", "redis_url", "database_url")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _check_models(self) -> Settings:
        if self.allowed_models:
            for model in (self.default_model, *self.fallback_models):
                if model not in self.allowed_models:
                    raise ValueError(f"model {model!r} is configured but not in allowed_models")
        return self

    @property
    def known_models(self) -> frozenset[str]:
        """Models that may appear as metric label values (bounded cardinality)."""
        return frozenset((self.default_model, *self.fallback_models, *self.allowed_models))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of the running process, read once. Tests build ``Settings`` directly."""
    return Settings()


def describe_validation_error(error: ValidationError) -> str:
    """One line per invalid setting, naming the variable and never showing its value."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        field = str(item["loc"][0]) if item["loc"] else "?"
        lines.append(f"{ENV_PREFIX}{field.upper()}: {item['msg']}")
    return "\n".join(lines)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in get_args(annotation))
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = re.sub(r"typing\.|pydantic\.types\.|app\.core\.config\.|pathlib\.", "", text)
    text = re.sub(r"Annotated\[(.*), NoDecode\]", r"\1", text)
    text = text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")
    return re.sub(r"<enum '(\w+)'>", r"\1", text)


def settings_markdown_table() -> str:
    """The README's configuration table, generated from ``Settings``."""
    rows = [
        "| Variable | Type | Default | Description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        if field.is_required():
            default = "**required secret**" if field.annotation is SecretStr else "**required**"
        else:
            value = field.get_default(call_default_factory=True)
            if isinstance(value, enum.Enum):
                value = value.value
            default = "(empty)" if value in (None, [], {}) else f"`{value}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | {_type_name(field.annotation).replace('|', 'or')} "
            f"| {default} | "
            f"{description} |"
        )
    return "\n".join(rows) + "\n"
