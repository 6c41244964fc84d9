"""Label feedback from a member's SOC: alert verdicts turned into ground truth for the next training run.

A member marks each alert **confirmed** (it was an attack) or **false positive** (it was not) in the
dashboard. Each verdict becomes one :class:`VerdictLabel`: an entity (a canonical column and its value, e.g.
``source.ip = 203.0.113.7``), a time window, and a label (1 attack, 0 benign). The dashboard exports them as
a CSV file (:func:`verdict_labels_csv`); a member's node reads it back (:func:`read_verdict_labels`) and
:func:`apply_verdict_labels` overwrites ``labels.is_attack`` / ``labels.attack_family`` of the events of that
entity inside that window, before :func:`mamori.features.labels_from_events` turns them into ``y``.

The file is ``verdict-labels.csv`` (:data:`VERDICT_LABELS_FILE`) with one header row and the columns of
:data:`VERDICT_LABEL_COLUMNS`; ``window.start`` / ``window.end`` are ISO 8601 times (UTC when no offset is
given), the window is half-open ``[start, end)``. Later rows win over earlier ones where windows overlap.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from mamori.errors import SchemaError
from mamori.events.schema import EVENT_SCHEMA, TIMESTAMP

__all__ = [
    "VERDICT_LABELS_FILE",
    "VERDICT_LABEL_COLUMNS",
    "VerdictLabel",
    "apply_verdict_labels",
    "read_verdict_labels",
    "verdict_labels_csv",
]

logger = logging.getLogger(__name__)

#: File name a member's node looks for beside its event Parquet files.
VERDICT_LABELS_FILE = "verdict-labels.csv"

#: Columns of the verdict-labels CSV, in order.
VERDICT_LABEL_COLUMNS: tuple[str, ...] = (
    "entity.kind", "entity.value", "window.start", "window.end", "label", "family", "alert.id", "verdict",
)


def _utc(text: str, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise SchemaError(f"{where}: {text[:40]!r} is not an ISO 8601 time (e.g. 2026-05-01T10:00:00Z).") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class VerdictLabel:
    """One verdict as a label: events of ``kind = value`` in ``[start, end)`` get ``label``.

    Attributes
    ----------
    kind : str
        A canonical event column (``source.ip``, ``user.name``, ...), the alert's entity kind.
    value : str
        The entity's value in that column.
    start, end : datetime
        The window (UTC, half-open).
    label : int
        1 = attack (confirmed alert), 0 = benign (false positive).
    family : str or None
        Attack family for a confirmed alert (``labels.attack_family``); None = ``"unknown"``.
    alert_id : str
        The alert the verdict was given on (for the audit trail).
    verdict : str
        ``"confirmed"`` or ``"false-positive"``.
    """

    kind: str
    value: str
    start: datetime
    end: datetime
    label: int
    family: str | None = None
    alert_id: str = ""
    verdict: str = ""

    def __post_init__(self) -> None:
        """Check the label, the window and the entity column."""
        where = f"VerdictLabel of alert {self.alert_id!r}"
        if self.label not in (0, 1):
            raise SchemaError(f"{where}: label must be 0 (benign) or 1 (attack), got {self.label!r}.")
        if self.kind not in EVENT_SCHEMA or self.kind.startswith("labels.") or self.kind == "@timestamp":
            raise SchemaError(f"{where}: entity kind {self.kind!r} is not a canonical event column "
                              "(e.g. 'source.ip', 'user.name').")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise SchemaError(f"{where}: window times must carry a time zone (UTC).")
        if not self.start < self.end:
            raise SchemaError(f"{where}: window.start {self.start.isoformat()} is not before window.end "
                              f"{self.end.isoformat()}.")


def verdict_labels_csv(labels: Iterable[VerdictLabel]) -> str:
    """The labels as the CSV a member's node reads (header :data:`VERDICT_LABEL_COLUMNS`).

    Parameters
    ----------
    labels : iterable of VerdictLabel
        In the order they should be applied (later rows win).

    Returns
    -------
    str
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(VERDICT_LABEL_COLUMNS)
    for lab in labels:
        writer.writerow([lab.kind, lab.value, lab.start.isoformat(), lab.end.isoformat(), lab.label,
                         lab.family or "", lab.alert_id, lab.verdict])
    return buf.getvalue()


def read_verdict_labels(path: str | Path) -> list[VerdictLabel]:
    """Read a verdict-labels CSV written by :func:`verdict_labels_csv` (the dashboard's label export).

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    list of VerdictLabel
        In file order.

    Raises
    ------
    SchemaError
        When a column is missing or a row is malformed (the message names the file and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaError(f"read_verdict_labels: cannot read {str(path)!r}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in VERDICT_LABEL_COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise SchemaError(f"read_verdict_labels: {str(path)!r} lacks column(s) {', '.join(missing)}; expected the "
                          f"header {','.join(VERDICT_LABEL_COLUMNS)} (export it from the dashboard's Alerts page).")
    out = []
    for row in reader:
        where = f"read_verdict_labels: line {reader.line_num} of {str(path)!r}"
        label = (row.get("label") or "").strip()
        if label not in ("0", "1"):
            raise SchemaError(f"{where}: label must be 0 or 1, got {label[:20]!r}.")
        try:
            out.append(VerdictLabel(
                kind=(row.get("entity.kind") or "").strip(), value=row.get("entity.value") or "",
                start=_utc(row.get("window.start") or "", where), end=_utc(row.get("window.end") or "", where),
                label=int(label), family=(row.get("family") or "").strip() or None,
                alert_id=(row.get("alert.id") or "").strip(), verdict=(row.get("verdict") or "").strip()))
        except SchemaError as exc:
            raise SchemaError(f"{where}: {exc}") from exc
    return out


def apply_verdict_labels(events: pl.DataFrame, labels: Sequence[VerdictLabel]) -> pl.DataFrame:
    """Overwrite the ground truth of the events each verdict covers.

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events (with or without ``labels.*`` columns; missing ones are added, null elsewhere,
        which :func:`mamori.features.labels_from_events` reads as benign).
    labels : sequence of VerdictLabel
        Applied in order, so a later verdict on the same events wins.

    Returns
    -------
    polars.DataFrame
        The events, same rows and order, with ``labels.is_attack`` (and ``labels.attack_family``: the
        label's family or ``"unknown"`` for attacks, null for benign) set where a label matched.

    Raises
    ------
    SchemaError
        If ``@timestamp`` is missing, or a label names an entity column the events lack.
    """
    if "@timestamp" not in events.columns:
        raise SchemaError("apply_verdict_labels: the events have no '@timestamp' column.")
    out = events
    for col in ("labels.is_attack", "labels.attack_family"):
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=EVENT_SCHEMA[col]).alias(col))
    ts = pl.col("@timestamp").cast(TIMESTAMP)
    for lab in labels:
        if lab.kind not in out.columns:
            raise SchemaError(f"apply_verdict_labels: alert {lab.alert_id!r} labels entity column {lab.kind!r}, "
                              "which these events lack; were they read with another format or mapping?")
        hit = (pl.col(lab.kind).cast(pl.String) == lab.value) & (ts >= lab.start) & (ts < lab.end)
        family = (lab.family or "unknown") if lab.label == 1 else None
        out = out.with_columns(
            pl.when(hit).then(pl.lit(bool(lab.label))).otherwise(pl.col("labels.is_attack")).alias("labels.is_attack"),
            pl.when(hit).then(pl.lit(family, dtype=pl.String)).otherwise(pl.col("labels.attack_family"))
            .alias("labels.attack_family"),
        )
        n = out.select(hit.sum()).item()
        if n == 0:
            logger.warning("verdict on alert %s (%s) matches no event in %s..%s", lab.alert_id, lab.kind,
                           lab.start.isoformat(), lab.end.isoformat())
        else:
            logger.info("verdict on alert %s: %d event(s) labelled %d", lab.alert_id, n, lab.label)
    return out
