"""The scoring HTTP API (FastAPI): ``POST /v1/score``, ``GET /v1/model``, ``GET /healthz``, ``GET /metrics``."""

from mamori.detect.api.app import ServiceConfig, create_app
from mamori.detect.api.server import serve

__all__ = ["ServiceConfig", "create_app", "serve"]
