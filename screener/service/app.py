"""The FastAPI app factory.

    uvicorn --factory screener.service.app:create_app      # or: screener serve

Nothing heavy happens at import or in ``create_app``: models, indexes and the database
are loaded in the background when the app starts, and ``/readyz`` says when they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from screener.service import errors
from screener.service.console import create_console
from screener.service.docs import install_docs
from screener.service.limits import BodyLimit
from screener.service.observe import Metrics, configure_logging, middleware
from screener.service.openapi_docs import install_openapi
from screener.service.routes import (
    admin,
    appeals,
    checks,
    health,
    held,
    jobs,
    labels,
    notices,
    prompts,
    review,
    territories,
    works,
)
from screener.service.runtime import Runtime
from screener.service.settings import ServiceSettings

DESCRIPTION = """Screens generated images against registered protected works before
release, and carries the duties around that check: rights holders' notices, a review
queue, a hash-chained audit log, risk prompts and AI-content labels.

Authenticate with an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""


def create_app(settings: ServiceSettings | None = None, *, configure_logs: bool = False) -> FastAPI:
    settings = settings or ServiceSettings()
    if configure_logs:
        configure_logging(settings.log_json, settings.log_level)
    metrics = Metrics()
    runtime = Runtime(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(runtime.start())
        try:
            yield
        finally:
            await loading
            await asyncio.to_thread(runtime.close)

    app = FastAPI(
        title="Infringement screening service",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    errors.install(app)
    errors.document_body_errors(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)  # inside the request id
    app.middleware("http")(middleware(metrics))
    for module in (
        checks,
        prompts,
        appeals,
        works,
        held,
        territories,
        notices,
        jobs,
        review,
        admin,
        labels,
        health,
    ):
        app.include_router(module.router)
    install_docs(app)
    app.mount("/console", create_console(runtime))  # the web console: pages, not JSON
    return app


def create_service() -> FastAPI:
    """The factory uvicorn calls in each worker process: settings from the environment,
    JSON logs configured."""
    return create_app(configure_logs=True)
