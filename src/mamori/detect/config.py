"""Settings of the scoring pipeline: window state budget, alert deduplication, explanations."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ScoringConfig"]

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")


def duration_seconds(value: str) -> float:
    """Seconds of ``<int><s|m|h|d>``."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"duration must look like '30s', '10m', '1h' or '1d'; got {value!r}")
    return float(int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)])


class ScoringConfig(BaseModel):
    """How a node scores events and raises alerts.

    Parameters
    ----------
    horizon : str, default="24h"
        How far back the per-entity window state reaches. Windowed features over windows no longer than this
        are exact; "ever"/"prior" counts (``ip_events_seen``, ``username_first_seen``, ...) count within it.
        Entities idle for longer are evicted.
    max_state_events : int, default=100000
        Hard budget of the window state, in events (the oldest go first). With the default columns an event
        costs about 300-600 bytes of state, so the default is roughly 30-60 MB whatever the traffic.
    dedup_window : str, default="10m"
        One alert per entity per window: further hits of the same entity within it only raise the count.
    dedup_by : tuple of str, default=("source.ip",)
        Event columns whose values name the entity of an alert, tried in order (first non-null wins).
    max_dedup_entities : int, default=100000
        Bound of the deduplication table (least recently alerted entities go first).
    top_k : int, default=5
        Contributing features listed per alert.
    explain_steps : int, default=16
        Integrated-gradients steps per explanation.
    incremental : bool, default=False
        Compute each event's features from per-entity window aggregates updated in O(1) per event
        (:class:`~mamori.features.OnlineFeatures`) instead of re-running feature extraction over the retained
        events plus the batch. Much cheaper per call for small batches (the HTTP API); same values for events
        arriving in time order. The state is then bounded by ``horizon`` (idle entities are forgotten) and
        ``max_entities``, not by ``max_state_events``.
    max_entities : int, default=1000000
        With ``incremental``: at most this many entities of each kind (IP, AS, username, user, session, device,
        TLS fingerprint) are held; the least recently seen are forgotten first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: str = "24h"
    max_state_events: int = Field(default=100_000, ge=0, le=50_000_000)
    dedup_window: str = "10m"
    dedup_by: tuple[str, ...] = ("source.ip",)
    max_dedup_entities: int = Field(default=100_000, ge=1)
    top_k: int = Field(default=5, ge=0, le=50)
    explain_steps: int = Field(default=16, ge=1, le=256)
    incremental: bool = False
    max_entities: int = Field(default=1_000_000, ge=1)

    @field_validator("horizon", "dedup_window")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    @field_validator("dedup_by")
    @classmethod
    def _check_dedup(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("dedup_by must name at least one event column, e.g. ('source.ip',)")
        return value

    @property
    def horizon_seconds(self) -> float:
        """The horizon in seconds."""
        return duration_seconds(self.horizon)

    @property
    def dedup_seconds(self) -> float:
        """The deduplication window in seconds."""
        return duration_seconds(self.dedup_window)
