"""Writers: line shapes, gzip, slabs, required columns, joining gateway and application events."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from events_samples import sample_events

from mamori.errors import SchemaError
from mamori.events import (
    EVENT_SCHEMA,
    FORMAT_COLUMNS,
    FORMATS,
    TIMESTAMP_PRECISION,
    conform,
    join_on_request_id,
    read_events,
    render_lines,
    write_events,
)
from mamori.events import writers as writers_module


def test_formats_and_columns_are_consistent() -> None:
    assert set(FORMAT_COLUMNS) == set(FORMATS) == set(TIMESTAMP_PRECISION)
    for cols in FORMAT_COLUMNS.values():
        assert set(cols) <= set(EVENT_SCHEMA)
        assert "@timestamp" in cols
    assert FORMAT_COLUMNS["ecs"] == tuple(EVENT_SCHEMA)
    assert "http.request.id" in FORMAT_COLUMNS["nginx"]


def test_nginx_line_is_combined_plus_trailing_fields() -> None:
    line = render_lines(sample_events().head(1), "nginx").item()
    assert line == (
        '203.0.113.5 - - [01/May/2026:00:00:00 +0000] "POST /v1/login HTTP/1.1" 200 512 "-" '
        '"Mozilla/5.0 (X11; Linux)" request_time=0.012 request_length=532 remote_port=51234 '
        'host="api.bank.example" request_id="req-1" ja3="771,4865-4866,0-23,29-23,0" msec=1777593600.123'
    )


def test_escapes_quotes_backslashes_and_control_characters() -> None:
    lines = render_lines(sample_events(), "nginx").to_list()
    assert '"GET /a\\x22b\\x5Cc?x=1&y=%27 HTTP/1.0"' not in lines[1]  # version is null for row 1
    assert '"GET /a\\x22b\\x5Cc?x=1&y=%27"' in lines[1]
    assert "tab\\x09here" in lines[3]
    assert all("\n" not in line for line in lines)


def test_ecs_lines_are_json_with_dotted_keys() -> None:
    lines = render_lines(sample_events(), "ecs").to_list()
    first = json.loads(lines[0])
    assert first["@timestamp"] == "2026-05-01T00:00:00.123456Z"
    assert first["labels.is_attack"] is False
    assert first["event.action"] == "login"


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_events_counts_lines_and_gzips(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writers_module, "WRITE_SLAB_ROWS", 3)  # several slabs
    events = pl.concat([sample_events()] * 5)
    path = tmp_path / "out.log.gz"
    assert write_events(events, path, fmt) == 20
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        assert len(fh.read().splitlines()) == 20
    assert read_events(path, fmt).summary.parsed == 20


def test_write_events_append(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    write_events(sample_events(), path, "nginx")
    write_events(sample_events(), path, "nginx", append=True)
    assert len(path.read_text().splitlines()) == 8


def test_gateway_formats_need_timestamp_and_method() -> None:
    events = sample_events().with_columns(pl.lit(None, dtype=EVENT_SCHEMA["@timestamp"]).alias("@timestamp"))
    with pytest.raises(SchemaError, match="4 rows have no '@timestamp'"):
        render_lines(events, "nginx")
    assert render_lines(events, "ecs").len() == 4


def test_unknown_format_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown log format 'apache2'"):
        render_lines(sample_events(), "apache2")


def test_empty_frame_renders_no_lines(tmp_path: Path) -> None:
    assert render_lines(sample_events().head(0), "nginx").len() == 0
    assert write_events(sample_events().head(0), tmp_path / "e.log", "alb") == 0


def test_join_on_request_id_fills_gateway_nulls_from_app_events(tmp_path: Path) -> None:
    # Prepare: a gateway log and the application's ECS events, written and read back as a simulator would
    events = sample_events()
    gw_path, app_path = tmp_path / "gw.log", tmp_path / "app.jsonl"
    write_events(events, gw_path, "nginx")
    app = events.select("http.request.id", "user.id", "session.id", "event.action", "labels.is_attack", "source.ip")
    app = app.with_columns(pl.lit("192.0.2.99").alias("source.ip"))
    extra = conform(pl.DataFrame({"http.request.id": [None, "orphan"], "user.id": ["u-x", "u-y"]}))
    write_events(pl.concat([conform(app), extra]), app_path, "ecs")
    gateway = read_events(gw_path, "nginx").frame
    app_events = read_events(app_path, "ecs").frame
    # Execute
    joined = join_on_request_id(gateway, app_events)
    # Assert
    assert joined.columns == list(EVENT_SCHEMA)
    assert joined.height == 4 + 2 + 1  # 4 gateway rows, the app row with a null id, the orphan, ...
    first = joined.row(0, named=True)
    assert first["user.id"] == "c-001"
    assert first["event.action"] == "login"
    assert first["labels.is_attack"] is False
    assert first["source.ip"] == "203.0.113.5"  # gateway wins
    assert joined.row(3, named=True)["user.id"] == "c-002"
    assert set(joined.tail(3).get_column("user.id").to_list()) >= {"u-x", "u-y"}


def test_join_can_drop_unmatched() -> None:
    gw = conform(pl.DataFrame({"http.request.id": ["a", "b"], "url.path": ["/a", "/b"]}))
    app = conform(pl.DataFrame({"http.request.id": ["b", "b", "c"], "user.id": ["u1", "u2", "u3"]}))
    joined = join_on_request_id(gw, app, keep_unmatched=False)
    assert joined.get_column("user.id").to_list() == [None, "u1"]
    kept = join_on_request_id(gw, app)
    assert kept.get_column("user.id").to_list() == [None, "u1", "u2", "u3"]


def test_parse_lines_in_memory() -> None:
    from mamori.events import parse_lines

    lines = [*render_lines(sample_events(), "envoy").to_list(), "", "not an envoy line"]
    events, rejected = parse_lines(lines, "envoy", source="tail", first_line=10)
    assert events.height == 4
    assert rejected.rows() == [
        (15, "not an envoy line", "field_count", rejected.get_column("detail")[0]),
    ]
    assert rejected.get_column("detail")[0].startswith("read_envoy: line 15 of 'tail' has 4 fields")
    with pytest.raises(SchemaError, match="not a line format"):
        parse_lines(lines, "csic")
