"""Events rendered in each format and read back give the same canonical rows (for the columns it carries)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from events_samples import event_rows, frame_of, sample_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mamori.events import (
    EVENT_SCHEMA,
    FORMAT_COLUMNS,
    FORMATS,
    Quarantine,
    project_to_format,
    read_events,
    write_events,
)


def _round_trip(frame: pl.DataFrame, fmt: str, path: Path) -> tuple[pl.DataFrame, Quarantine]:
    written = write_events(frame, path, fmt)
    assert written == frame.height
    quarantine = Quarantine()
    result = read_events(path, fmt, quarantine=quarantine)
    assert result.summary.lines == frame.height
    return result.frame, quarantine


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_sample_events(fmt: str, tmp_path: Path) -> None:
    # Prepare
    events = sample_events()
    # Execute
    back, quarantine = _round_trip(events, fmt, tmp_path / f"events.{fmt}.log")
    # Assert
    assert quarantine.records == []
    expected = project_to_format(events, fmt)
    cols = list(FORMAT_COLUMNS[fmt])
    assert_frame_equal(back.select(cols), expected.select(cols))
    assert back.columns == list(EVENT_SCHEMA)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_gzip(fmt: str, tmp_path: Path) -> None:
    events = sample_events()
    back, quarantine = _round_trip(events, fmt, tmp_path / f"events.{fmt}.log.gz")
    assert quarantine.total == 0
    cols = list(FORMAT_COLUMNS[fmt])
    assert_frame_equal(back.select(cols), project_to_format(events, fmt).select(cols))


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(event_rows(), min_size=1, max_size=12))
def test_round_trip_property(fmt: str, rows: list[dict[str, object]], tmp_path: Path) -> None:
    events = frame_of(rows)
    back, quarantine = _round_trip(events, fmt, tmp_path / f"prop.{fmt}.log")
    assert quarantine.records == [], quarantine.records[:2]
    cols = list(FORMAT_COLUMNS[fmt])
    assert_frame_equal(back.select(cols), project_to_format(events, fmt).select(cols))


def test_ecs_carries_every_column_including_labels(tmp_path: Path) -> None:
    events = sample_events()
    back, _ = _round_trip(events, "ecs", tmp_path / "all.ecs.jsonl")
    assert_frame_equal(back, events)


def test_nginx_timestamp_is_millisecond_precision(tmp_path: Path) -> None:
    events = sample_events()
    back, _ = _round_trip(events, "nginx", tmp_path / "ms.log")
    assert back.get_column("@timestamp").to_list()[0].microsecond == 123000
