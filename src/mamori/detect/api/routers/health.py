"""``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mamori.detect.api.dependencies import get_service
from mamori.detect.service import ScoringService

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and the model version")
async def healthz(service: Annotated[ScoringService, Depends(get_service)]) -> dict[str, Any]:
    """``{"status": "ok", ...}`` while the service can score."""
    stats = service.scorer.stats()
    return {"status": "ok", "model_version": service.scorer.model.version, "model_sha256": service.scorer.model_sha256,
            "uptime_seconds": round(time.time() - service.started_at, 1), "events_scored": stats["events_scored"],
            "state_events": stats["state_events"], "state_entities": stats["state_entities"]}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(service: Annotated[ScoringService, Depends(get_service)]) -> Response:
    """Events scored, alerts, latency histogram, model version, window-state size (text exposition format)."""
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
