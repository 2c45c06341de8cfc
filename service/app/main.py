"""Application factory and lifespan.

``create_app(settings)`` builds the app; long-lived clients (upstream HTTP pool, Redis pool,
PostgreSQL pool and its writer task) are created in the lifespan, kept on ``app.state`` and
closed after ``yield``. Templates are validated in ``create_app``, so a bad templates file
stops the process before it listens.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI

from app import __version__
from app.api.middleware import RequestMiddleware
from app.api.routes import chat, generate, health, metrics, templates, usage
from app.core.config import Settings, get_settings
from app.core.metrics import Metrics
from app.errors import install_error_handlers
from app.services.cache import ResponseCache, make_redis
from app.services.completion import CompletionService
from app.services.ledger import UsageLedger
from app.services.templates import load_templates
from app.services.upstream import UpstreamClient

logger = logging.getLogger(__name__)

LEDGER_FLUSH_ON_SHUTDOWN_SECONDS = 5.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    redis = make_redis(settings)
    cache = ResponseCache(redis, settings, metrics)
    upstream = UpstreamClient(settings, metrics)
    ledger = UsageLedger(settings, metrics)
    ledger.start()
    app.state.cache = cache
    app.state.upstream = upstream
    app.state.ledger = ledger
    app.state.completions = CompletionService(settings, upstream, cache, metrics)
    logger.info(
        "prompt service started",
        extra={
            "service": settings.service_name,
            "version": __version__,
            "upstream_host": urlsplit(settings.upstream_base_url).hostname,
            "default_model": settings.default_model,
            "fallback_models": settings.fallback_models,
            "cache_mode": settings.cache_mode.value,
            "templates": len(app.state.templates.templates),
            "service_keys": len(settings.service_api_keys),
        },
    )
    try:
        yield
    finally:
        # uvicorn has let in-flight requests finish (or cancelled them after the grace period).
        await ledger.close(flush_timeout=LEDGER_FLUSH_ON_SHUTDOWN_SECONDS)
        await upstream.aclose()
        await redis.aclose()
        logger.info("prompt service stopped", extra={"service": settings.service_name})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Prompt service",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Metrics are Prometheus (app.core.metrics); FastAPI's own OpenTelemetry layer would
        # also log exception messages, which may quote upstream text.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.templates = load_templates(settings.templates_file)
    app.state.service_keys = tuple(k.get_secret_value().encode() for k in settings.service_api_keys)
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware)
    for module in (chat, generate, templates, usage, health, metrics):
        app.include_router(module.router)
    return app
