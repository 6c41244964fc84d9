"""Closing the loop: shared campaign indicators as a feature column for the next window's detectors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import polars as pl

from mamori.analytics.engine import Finding
from mamori.errors import SchemaError
from mamori.features import FeatureMatrix

__all__ = ["CAMPAIGN_FEATURE", "add_campaign_feature", "indicator_hits"]

#: Name of the feature column (and of the event column :func:`indicator_hits` adds).
CAMPAIGN_FEATURE = "campaign.indicator_hit"

_KIND_COLUMN = {"ip": "source.ip", "asn": "source.as.number", "user_agent": "user_agent.original",
                "ja3": "tls.client.ja3"}


def indicator_hits(events: pl.DataFrame, findings: Iterable[Finding], *, kinds: tuple[str, ...] = ("ip", "net24"),
                   valid_hours: float = 72.0) -> pl.DataFrame:
    """Mark events that match a campaign indicator already shared when the event happened.

    An event matches when one of its values of ``kinds`` equals a finding's value and the event time lies in
    ``[flagged_at, flagged_at + valid_hours)`` (an indicator only helps after it is published, so there is no
    look-ahead).

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events.
    findings : iterable of Finding
        Shared findings (e.g. ``AnalyticsResult.findings.values()`` or parsed from pulled indicators).
    kinds : tuple of str, default=("ip", "net24")
        Which finding kinds to match.
    valid_hours : float, default=72.0
        Validity after the flag time.

    Returns
    -------
    polars.DataFrame
        ``events`` with an Int8 column :data:`CAMPAIGN_FEATURE` (1 on a hit).

    Raises
    ------
    SchemaError
        When ``@timestamp`` or ``source.ip`` is missing.
    """
    for col in ("@timestamp", "source.ip"):
        if col not in events.columns:
            raise SchemaError(f"indicator_hits: events lack column {col!r}; pass canonical events")
    hit = pl.lit(False)
    rows = [f for f in findings if f.kind in kinds]
    ts = pl.col("@timestamp").dt.epoch("us")
    for kind in kinds:
        sel = [f for f in rows if f.kind == kind]
        if not sel:
            continue
        table = pl.DataFrame({"value": [f.value for f in sel],
                              "from_us": [int(f.flagged_at.timestamp() * 1e6) for f in sel]}).group_by("value").agg(
            pl.col("from_us").min())
        if kind == "net24":
            col = pl.col("source.ip").str.replace(r"\.\d+$", "") + ".0/24"
        else:
            col = pl.col(_KIND_COLUMN[kind]).cast(pl.String)
        lookup = dict(zip(table["value"].to_list(), table["from_us"].to_list(), strict=True))
        since = col.replace_strict(lookup, default=None, return_dtype=pl.Int64)
        hit = hit | ((ts >= since) & (ts < since + int(valid_hours * 3.6e9))).fill_null(False)
    return events.with_columns(hit.cast(pl.Int8).alias(CAMPAIGN_FEATURE))


def add_campaign_feature(matrix: FeatureMatrix, events: pl.DataFrame, findings: Iterable[Finding], *,
                         valid_hours: float = 72.0) -> FeatureMatrix:
    """Append the campaign-indicator column to a feature matrix built from the same events (same row order).

    Parameters
    ----------
    matrix : FeatureMatrix
        From :func:`mamori.features.extract_features` on ``events``.
    events : polars.DataFrame
        The events the matrix was built from.
    findings : iterable of Finding
        Shared findings.
    valid_hours : float, default=72.0
        Validity after the flag time.

    Returns
    -------
    FeatureMatrix
        A new matrix with one more column, :data:`CAMPAIGN_FEATURE`, in group ``campaign``.

    Raises
    ------
    SchemaError
        When the matrix and the events differ in length.
    """
    if len(matrix) != events.height:
        raise SchemaError(f"add_campaign_feature: matrix has {len(matrix)} rows, events {events.height}")
    col = indicator_hits(events, findings, valid_hours=valid_hours)[CAMPAIGN_FEATURE].to_numpy().astype(np.float32)
    spec = matrix.spec
    new_spec = dataclasses.replace(spec, names=(*spec.names, CAMPAIGN_FEATURE), groups=(*spec.groups, "campaign"),
                                   log1p=(*spec.log1p, False))
    return FeatureMatrix(np.hstack([matrix.X, col[:, None]]), new_spec)


