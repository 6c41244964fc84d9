"""Verdict labels: the CSV round trip, applying them to events, and clear errors on bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from mamori.errors import SchemaError
from mamori.events import VerdictLabel, apply_verdict_labels, conform, read_verdict_labels, verdict_labels_csv

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def _events() -> pl.DataFrame:
    times = [T0 + timedelta(minutes=m) for m in (0, 5, 10, 12)]
    return conform(pl.DataFrame({"@timestamp": times, "source.ip": ["1.2.3.4", "1.2.3.4", "1.2.3.4", "5.6.7.8"]}))


def _label(label: int, start: datetime = T0, minutes: int = 10, **kw: object) -> VerdictLabel:
    return VerdictLabel("source.ip", "1.2.3.4", start, start + timedelta(minutes=minutes), label, **kw)  # type: ignore[arg-type]


def test_window_is_half_open_and_later_verdicts_win() -> None:
    out = apply_verdict_labels(_events(), [_label(1, family="scraping")])
    assert out.get_column("labels.is_attack").to_list() == [True, True, None, None]
    assert out.get_column("labels.attack_family").to_list() == ["scraping", "scraping", None, None]
    out = apply_verdict_labels(_events(), [_label(1), _label(0, start=T0 + timedelta(minutes=5))])
    assert out.get_column("labels.is_attack").to_list() == [True, False, False, None]
    assert out.get_column("labels.attack_family").to_list() == ["unknown", None, None, None]
    assert out.height == 4 and out.columns == _events().columns  # no row dropped, schema kept


def test_csv_round_trip(tmp_path: Path) -> None:
    labels = [_label(1, family="credential_stuffing", alert_id="a1", verdict="confirmed"),
              _label(0, alert_id="a2", verdict="false-positive")]
    path = tmp_path / "verdict-labels.csv"
    path.write_text(verdict_labels_csv(labels))
    assert read_verdict_labels(path) == labels


@pytest.mark.parametrize(("row", "message"), [
    ("source.ip,1.2.3.4,2026-05-01T10:00:00Z,2026-05-01T10:10:00Z,2,,a,x", "line 2 .* label must be 0 or 1"),
    ("source.ip,1.2.3.4,yesterday,2026-05-01T10:10:00Z,1,,a,x", "line 2 .* not an ISO 8601 time"),
    ("labels.is_attack,1,2026-05-01T10:00:00Z,2026-05-01T10:10:00Z,1,,a,x", "not a canonical event column"),
    ("source.ip,1.2.3.4,2026-05-01T10:10:00Z,2026-05-01T10:00:00Z,1,,a,x", "is not before window.end"),
])
def test_bad_rows_are_named(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("entity.kind,entity.value,window.start,window.end,label,family,alert.id,verdict\n" + row + "\n")
    with pytest.raises(SchemaError, match=message):
        read_verdict_labels(path)


def test_missing_column_and_unknown_entity_column(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("entity.kind,entity.value,label\nsource.ip,1.2.3.4,1\n")
    with pytest.raises(SchemaError, match="lacks column"):
        read_verdict_labels(path)
    events = _events().select("@timestamp", "source.ip")
    with pytest.raises(SchemaError, match="'user.name', which these events lack"):
        apply_verdict_labels(events, [VerdictLabel("user.name", "x", T0, T0 + timedelta(minutes=1), 1)])
