"""Settings of the consortium dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DashboardConfig"]


class DashboardConfig(BaseModel):
    """How the dashboard behaves.

    Parameters
    ----------
    title : str, default="mamori consortium"
        Shown in every page header.
    results_dir : Path or None, default=None
        Folder with ``results.json`` (federated history, per-member metrics) and ``*.html`` assessment
        reports (e.g. the output of ``mamori demo``); pages that need it say so when it is missing.
    api_root : str, default="mamori"
        TAXII API root whose collections the intelligence pages read.
    session_minutes : int, default=480
        Lifetime of a login session.
    secure_cookies : bool, default=False
        Mark the session cookie ``Secure`` (set it when served over HTTPS).
    max_objects : int, default=5000
        Most STIX objects read per collection for a page or an export.
    privacy_budget : float, default=8.0
        Epsilon budget per member shown against the ledger's spend.
    alerts_dir : Path or None, default=None
        Folder of alert files written by ``mamori score`` (:class:`mamori.detect.JsonlAlertSink`), one per
        member: ``<member name>.jsonl``. Verdicts go to ``<member name>.verdicts.jsonl`` beside it.
    sightings_collection : str or None, default=None
        Collection (id or alias) that confirmed alerts are published to as sightings; None = the first
        collection the member may write to.
    sightings_tlp : str, default="amber"
        TLP level of those sightings.
    label_window_seconds : float, default=600.0
        Verdicts exported as training labels (``/alerts/labels.csv``) cover the alert's entity from the
        alert's first event for this long (``mamori score``'s default deduplication window).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = "mamori consortium"
    results_dir: Path | None = None
    api_root: str = Field(default="mamori", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_minutes: int = Field(default=480, ge=1)
    secure_cookies: bool = False
    max_objects: int = Field(default=5000, ge=1)
    privacy_budget: float = Field(default=8.0, gt=0)
    alerts_dir: Path | None = None
    sightings_collection: str | None = None
    sightings_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"
    label_window_seconds: float = Field(default=600.0, gt=0)
