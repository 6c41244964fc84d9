"""``POST /v1/score``: score one event or a batch."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Body, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from mamori.detect.api.dependencies import get_service, model_dict
from mamori.detect.api.schemas import EventIn, ScoreBatchIn, ScoreResponse
from mamori.detect.service import RequestResult, ScoringService
from mamori.errors import SchemaError
from mamori.events import EVENT_SCHEMA

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["scoring"])

_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
_FIELDS = [(name, info.alias) for name, info in EventIn.model_fields.items()]
_SCHEMA = {alias: EVENT_SCHEMA[alias] for _, alias in _FIELDS if alias is not None}


def event_rows(events: list[EventIn]) -> list[dict[str, object]]:
    """Canonical rows (column -> value) of validated events, timestamps in UTC.

    Raises
    ------
    SchemaError
        If a timestamp is outside 1970-2200.
    """
    rows = []
    for i, ev in enumerate(events):
        row = ev.model_dump(by_alias=True)
        ts = row["@timestamp"]
        ts = ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
        if not _EARLIEST <= ts < _LATEST:
            raise SchemaError(
                f"POST /v1/score: event {i} has '@timestamp' {ts.date()} outside 1970-2200; send the event time in "
                "ISO 8601."
            )
        row["@timestamp"] = ts
        rows.append(row)
    return rows


def events_frame(events: list[EventIn]) -> pl.DataFrame:
    """Canonical frame of validated events (see :func:`event_rows`)."""
    return pl.from_dicts(event_rows(events), schema=_SCHEMA)


@router.post("/score", response_model=None, summary="Score one event or a batch of events",
             responses={200: {"model": ScoreResponse}, 413: {"description": "Body too large"},
                        422: {"description": "Invalid events"}})
async def score(
    body: Annotated[EventIn | ScoreBatchIn, Body(description="One event, or {\"events\": [...]} in order.")],
    service: Annotated[ScoringService, Depends(get_service)],
) -> JSONResponse:
    """Score events with the current model; alerts are deduplicated per entity and window."""
    started = time.perf_counter()
    events = body.events if isinstance(body, ScoreBatchIn) else [body]
    try:
        result = await service.score_rows(event_rows(events))
    except Exception:
        service.metrics.requests.labels(outcome="error").inc()
        raise
    service.metrics.requests.labels(outcome="ok").inc()
    response = JSONResponse(score_content(service, result))
    service.metrics.latency.observe(time.perf_counter() - started)
    return response


def score_content(service: ScoringService, result: RequestResult) -> dict[str, object]:
    """The JSON body of a scored request (:class:`ScoreResponse`), JSON-ready."""
    results = [{"score": s, "alert": a} for s, a in zip(result.scores.tolist(), result.alert_flags.tolist(),
                                                       strict=True)]
    content = {"model": model_dict(service), "results": results, "alerts": result.alerts}
    return jsonable_encoder(content) if result.alerts else content  # type: ignore[no-any-return]
