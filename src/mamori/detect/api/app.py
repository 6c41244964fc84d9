"""The scoring API's app factory: assembles the service, routers, middleware and exception handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from mamori.detect.api.errors import BodySizeLimit, install_exception_handlers
from mamori.detect.api.fastpath import ScoreFastPath
from mamori.detect.api.routers import health, model, score
from mamori.detect.service import ModelWatcher, ScoringService

__all__ = ["ServiceConfig", "create_app"]

logger = logging.getLogger(__name__)


class ServiceConfig(BaseModel):
    """Settings of the scoring API.

    Parameters
    ----------
    max_body_bytes : int, default=5242880
        Larger request bodies get 413 (5 MiB: a batch of 10,000 events).
    max_batch_events : int, default=20000
        Events per internal scoring micro-batch.
    reload_interval : float, default=5.0
        Seconds between polls of the model source for hot reload.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=20_000, ge=1)
    reload_interval: float = Field(default=5.0, gt=0)


def create_app(service: ScoringService, config: ServiceConfig | None = None,
               watcher: ModelWatcher | None = None) -> FastAPI:
    """Build the scoring app around a service.

    Parameters
    ----------
    service : ScoringService
        Scores requests (model, window state, alert sinks, metrics).
    config : ServiceConfig or None, default=None
        Settings.
    watcher : ModelWatcher or None, default=None
        Started and stopped with the app, for hot reload.

    Returns
    -------
    fastapi.FastAPI
        Serve with uvicorn; the OpenAPI spec is at ``/openapi.json``.
    """
    config = config or ServiceConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            await service.stop()

    app = FastAPI(title="mamori scoring API", version="1",
                  description="Scores canonical events (ECS) with the consortium's model; alerts per entity.",
                  lifespan=lifespan)
    app.state.service = service
    app.state.config = config
    for module in (score, model, health):
        app.include_router(module.router)
    install_exception_handlers(app)
    # innermost first: valid scoring requests skip FastAPI's per-request machinery, inside the body-size guard
    app.add_middleware(ScoreFastPath, service=service)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    return app
