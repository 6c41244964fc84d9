"""``POST /v1/score``: score one event or a batch."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Body, Depends

from mamori.detect.api.dependencies import get_service, model_info
from mamori.detect.api.schemas import EventIn, ScoreBatchIn, ScoreResponse, ScoreResult
from mamori.detect.service import ScoringService
from mamori.errors import SchemaError
from mamori.events import EVENT_SCHEMA

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["scoring"])

_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_FIELDS = [(name, info.alias) for name, info in EventIn.model_fields.items()]
_SCHEMA = {alias: EVENT_SCHEMA[alias] for _, alias in _FIELDS if alias is not None}


def events_frame(events: list[EventIn]) -> pl.DataFrame:
    """Canonical frame of validated events.

    Raises
    ------
    SchemaError
        If a timestamp is outside 1970-2200.
    """
    columns: dict[str, list[object]] = {alias: [] for _, alias in _FIELDS if alias is not None}
    for i, ev in enumerate(events):
        for name, alias in _FIELDS:
            value = getattr(ev, name)
            if name == "timestamp":
                value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
                if not _EARLIEST <= value < _LATEST:
                    raise SchemaError(
                        f"POST /v1/score: event {i} has '@timestamp' {value.date()} outside 1970-2200; send the "
                        "event time in ISO 8601."
                    )
            columns[str(alias)].append(value)
    return pl.DataFrame(columns, schema=_SCHEMA)


@router.post("/score", response_model=ScoreResponse, summary="Score one event or a batch of events",
             responses={413: {"description": "Body too large"}, 422: {"description": "Invalid events"}})
async def score(
    body: Annotated[EventIn | ScoreBatchIn, Body(description="One event, or {\"events\": [...]} in order.")],
    service: Annotated[ScoringService, Depends(get_service)],
) -> ScoreResponse:
    """Score events with the current model; alerts are deduplicated per entity and window."""
    started = time.perf_counter()
    events = body.events if isinstance(body, ScoreBatchIn) else [body]
    try:
        frame = events_frame(events)
        result = await service.score(frame)
    except Exception:
        service.metrics.requests.labels(outcome="error").inc()
        raise
    service.metrics.requests.labels(outcome="ok").inc()
    service.metrics.latency.observe(time.perf_counter() - started)
    results = [ScoreResult(score=float(s), alert=bool(a)) for s, a in zip(result.scores, result.alert_flags,
                                                                           strict=True)]
    return ScoreResponse(model=model_info(service), results=results, alerts=result.alerts)
