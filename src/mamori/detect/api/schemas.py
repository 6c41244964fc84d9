"""Request and response bodies of the scoring API (they make the OpenAPI spec)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EventIn", "ModelInfo", "ScoreBatchIn", "ScoreResponse", "ScoreResult"]

_I32 = 2**31 - 1
_I64 = 2**63 - 1
_S = 8192  # longest accepted string field (characters)


class EventIn(BaseModel):
    """One canonical event (ECS names). Only ``@timestamp`` is required; ground truth (``labels.*``) is refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    timestamp: dt.datetime = Field(alias="@timestamp", description="Event time (ISO 8601; naive means UTC).")
    organization_id: str | None = Field(None, alias="organization.id", max_length=256)
    source_ip: str | None = Field(None, alias="source.ip", max_length=64)
    source_port: int | None = Field(None, alias="source.port", ge=0, le=65535)
    source_as_number: int | None = Field(None, alias="source.as.number", ge=0, le=_I64)
    source_as_organization_name: str | None = Field(None, alias="source.as.organization.name", max_length=512)
    source_geo_country_iso_code: str | None = Field(None, alias="source.geo.country_iso_code", max_length=8)
    url_domain: str | None = Field(None, alias="url.domain", max_length=512)
    url_path: str | None = Field(None, alias="url.path", max_length=_S)
    url_query: str | None = Field(None, alias="url.query", max_length=_S)
    http_request_method: str | None = Field(None, alias="http.request.method", max_length=32)
    http_version: str | None = Field(None, alias="http.version", max_length=16)
    http_request_id: str | None = Field(None, alias="http.request.id", max_length=256)
    http_request_referrer: str | None = Field(None, alias="http.request.referrer", max_length=_S)
    http_request_body_content: str | None = Field(None, alias="http.request.body.content", max_length=65536)
    http_request_bytes: int | None = Field(None, alias="http.request.bytes", ge=0, le=_I64)
    http_response_status_code: int | None = Field(None, alias="http.response.status_code", ge=100, le=999)
    http_response_body_bytes: int | None = Field(None, alias="http.response.body.bytes", ge=0, le=_I64)
    event_duration: int | None = Field(None, alias="event.duration", ge=0, le=_I64, description="Nanoseconds.")
    user_agent_original: str | None = Field(None, alias="user_agent.original", max_length=_S)
    tls_client_ja3: str | None = Field(None, alias="tls.client.ja3", max_length=256)
    user_name: str | None = Field(None, alias="user.name", max_length=512)
    user_id: str | None = Field(None, alias="user.id", max_length=512)
    session_id: str | None = Field(None, alias="session.id", max_length=512)
    device_id: str | None = Field(None, alias="device.id", max_length=512)
    event_action: str | None = Field(None, alias="event.action", max_length=64)
    event_outcome: str | None = Field(None, alias="event.outcome", max_length=32)
    banking_amount: float | None = Field(None, alias="banking.amount", ge=-1e15, le=1e15, allow_inf_nan=False)
    banking_payee_id: str | None = Field(None, alias="banking.payee.id", max_length=512)
    banking_instrument: str | None = Field(None, alias="banking.instrument", max_length=64)


class ScoreBatchIn(BaseModel):
    """A batch of events, scored in order."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class ScoreResult(BaseModel):
    """The score of one event."""

    score: float
    alert: bool = Field(description="score > threshold")


class ModelInfo(BaseModel):
    """The model in use."""

    name: str
    version: int
    sha256: str
    threshold: float
    n_features: int
    spec_fingerprint: str
    families: list[str]


class ScoreResponse(BaseModel):
    """Scores in input order, and the alerts they raised (deduplicated per entity and window)."""

    model: ModelInfo
    results: list[ScoreResult]
    alerts: list[dict[str, Any]]
