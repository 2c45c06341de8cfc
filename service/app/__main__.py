"""``python -m app``: run the service under uvicorn with explicit settings.

One worker per process: Kubernetes scales pods, and one event loop per container keeps
memory and connection pools predictable.
"""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from app.core.config import describe_validation_error, get_settings
from app.core.logging import configure_logging

logger = logging.getLogger("app")


def _loop() -> str:
    try:
        import uvloop  # noqa: F401, PLC0415
    except ImportError:
        return "asyncio"
    return "uvloop"


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        sys.stderr.write(f"invalid configuration:\n{describe_validation_error(exc)}\n")
        return 2
    configure_logging(settings.log_level)
    # Imported once the settings are known good: the app pulls in the openai SDK and
    # FastAPI (seconds of imports), and a configuration error should be reported at once.
    import uvicorn  # noqa: PLC0415

    from app.main import create_app  # noqa: PLC0415
    from app.services.templates import TemplateConfigError  # noqa: PLC0415

    try:
        app = create_app(settings)
    except TemplateConfigError as exc:
        logger.error("invalid templates file", extra={"error": str(exc)})
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=_loop(),
        http="httptools",
        lifespan="on",
        log_config=None,  # our JSON logging, set up above
        access_log=False,  # the middleware writes one JSON line per request
        server_header=False,
        date_header=True,
        proxy_headers=False,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        backlog=2048,
        limit_concurrency=None,  # the middleware sheds load with the service's error shape
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
