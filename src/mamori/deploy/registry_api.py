"""The coordinator's model-registry API: members pull the global model published after each federated run.

Two read-only endpoints behind the members' TAXII API keys (HTTP Basic, user = member name):

- ``GET /v1/models/{name}`` - JSON ``{"name", "version", "sha256", "size_bytes", "created_at"}`` of the
  newest published global model of ``name`` (the registry entry ``<name>.published``);
- ``GET /v1/models/{name}/{sha256}`` - its weights (``application/octet-stream``, the registry's array
  encoding; the SHA-256 of the body is ``sha256``).

Only published models are served: per-round checkpoints of a run in progress stay on the coordinator.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mamori.errors import StoreError
from mamori.intel.taxii import Member, authenticate
from mamori.store import ModelRegistry, Store

__all__ = ["PUBLISHED_SUFFIX", "create_registry_app"]

logger = logging.getLogger(__name__)

PUBLISHED_SUFFIX = ".published"


class _Unauthorized(Exception):
    pass


class _NotFound(Exception):
    pass


def _member(request: Request) -> Member:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        raise _Unauthorized
    try:
        name, _, key = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _Unauthorized from exc
    member = authenticate(request.app.state.store, key, name)
    if member is None:
        raise _Unauthorized
    return member


Viewer = Annotated[Member, Depends(_member)]


def _latest(registry: ModelRegistry, name: str) -> Any:
    records = registry.list(name + PUBLISHED_SUFFIX)
    if not records:
        raise _NotFound(f"no published global model named {name!r} yet; it appears after the first completed run")
    return max(records, key=lambda r: (r.version, r.id))


def create_registry_app(store: Store) -> FastAPI:
    """Build the model-registry API over an open store.

    Parameters
    ----------
    store : Store
        The coordinator's store (model registry and TAXII members).

    Returns
    -------
    fastapi.FastAPI
        Serve with uvicorn; every request needs a member's HTTP Basic credentials.
    """
    app = FastAPI(title="mamori model registry", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store = store
    registry = ModelRegistry(store)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(request: Request, exc: _Unauthorized) -> Response:
        return JSONResponse({"title": "Unauthorized", "description": "member name and API key required"},
                            status_code=401, headers={"WWW-Authenticate": 'Basic realm="mamori"'})

    @app.exception_handler(_NotFound)
    async def _not_found(request: Request, exc: _NotFound) -> Response:
        return JSONResponse({"title": "Not Found", "description": str(exc)}, status_code=404)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        return JSONResponse({"title": "Not Found", "description": str(exc)}, status_code=404)

    @app.get("/v1/models/{name}")
    def latest(name: str, member: Viewer) -> dict[str, Any]:
        r = _latest(registry, name)
        # the consortium's standardiser the weights were trained with (JSON; "" for runs without a stats round)
        return {"name": name, "version": r.version, "sha256": r.sha256, "size_bytes": r.size_bytes,
                "created_at": r.created_at, "standardizer": str(r.metadata.get("standardizer", ""))}

    @app.get("/v1/models/{name}/{sha256}")
    def weights(name: str, sha256: str, member: Viewer) -> Response:
        checkpoint = registry.get(sha256, name=name + PUBLISHED_SUFFIX)
        logger.info("member %s pulled %s v%d", member.name, name, checkpoint.record.version)
        return Response(checkpoint.weights, media_type="application/octet-stream",
                        headers={"X-Model-Version": str(checkpoint.record.version)})

    return app
