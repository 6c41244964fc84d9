"""The TAXII 2.1 app factory: assembles routers, state, middleware and exception handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.handlers import install_exception_handlers
from mamori.intel.taxii.ratelimit import RateLimiter
from mamori.intel.taxii.repository import TaxiiRepository
from mamori.intel.taxii.routers import api_root, collections, discovery, manifest, objects
from mamori.store import Store

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


class _TrailingSlash:
    """Serve ``/path`` as ``/path/``: TAXII URLs end in a slash, and taxii2-client drops it for status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/"):
            scope = dict(scope, path=scope["path"] + "/")
            if scope.get("raw_path"):
                scope["raw_path"] = scope["raw_path"] + b"/"
        await self.app(scope, receive, send)


def create_app(store: Store, config: TaxiiConfig | None = None) -> FastAPI:
    """Build the TAXII 2.1 server app over an open store.

    Parameters
    ----------
    store : Store
        The open store (collections, members and objects live there).
    config : TaxiiConfig or None, default=None
        Settings; defaults when None.

    Returns
    -------
    fastapi.FastAPI
        Serve it with uvicorn (see :func:`mamori.intel.taxii.serve`).
    """
    config = config or TaxiiConfig()
    app = FastAPI(title=config.title, description=config.description, openapi_url=None, docs_url=None,
                  redoc_url=None, redirect_slashes=False)
    app.state.config = config
    app.state.store = store
    app.state.repository = TaxiiRepository(store)
    app.state.limiter = RateLimiter()
    for module in (discovery, api_root, collections, manifest, objects):
        app.include_router(module.router)
    install_exception_handlers(app)
    app.add_middleware(_TrailingSlash)
    return app
