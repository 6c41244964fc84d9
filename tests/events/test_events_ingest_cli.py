"""``mamori ingest`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from events_samples import sample_events
from typer.testing import CliRunner

from mamori.cli import app
from mamori.events import EVENT_SCHEMA, write_events

runner = CliRunner()


def test_ingest_writes_parquet_and_quarantine(tmp_path: Path) -> None:
    # Prepare
    log = tmp_path / "gw.log"
    write_events(sample_events(), log, "nginx")
    with log.open("ab") as fh:
        fh.write(b"garbage\n\xff\xfe\n")
    app_log = tmp_path / "app.jsonl.gz"
    write_events(sample_events(), app_log, "ecs")
    out, quarantine = tmp_path / "out" / "events.parquet", tmp_path / "q.jsonl"
    # Execute
    result = runner.invoke(
        app,
        ["ingest", str(log), str(app_log), "--out", str(out), "--quarantine", str(quarantine), "--organization", "b1"],
    )
    # Assert
    assert result.exit_code == 0, result.output
    assert "gw.log" in result.output and "app.jsonl.gz" in result.output
    assert "wrote 8 events" in result.output
    assert "field_count" in result.output and "invalid_utf8" in result.output
    frame = pl.read_parquet(out)
    assert frame.columns == list(EVENT_SCHEMA)
    assert frame.height == 8
    assert frame.get_column("organization.id").to_list()[:4] == ["b1"] * 4
    records = [json.loads(x) for x in quarantine.read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in records] == [(5, "field_count"), (6, "invalid_utf8")]


def test_ingest_explicit_format_and_csv_mapping(tmp_path: Path) -> None:
    csv = tmp_path / "log.csv"
    csv.write_text("ip,path\n10.0.0.1,/a\n10.0.0.2\n")
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"source.ip" = "ip"\n"url.path" = "path"\n')
    out = tmp_path / "e.parquet"
    result = runner.invoke(
        app,
        [
            "ingest",
            str(csv),
            "--format",
            "csv",
            "--mapping",
            str(mapping),
            "--out",
            str(out),
            "--quarantine",
            str(tmp_path / "q.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).get_column("url.path").to_list() == ["/a"]
    assert "csv_field_count" in result.output


def test_ingest_errors_exit_2(tmp_path: Path) -> None:
    unknown = tmp_path / "x.log"
    unknown.write_text("hello\nworld\n")
    out = tmp_path / "e.parquet"
    result = runner.invoke(app, ["ingest", str(unknown), "--out", str(out), "--quarantine", str(tmp_path / "q")])
    assert result.exit_code == 2
    assert "cannot recognise 'x.log'" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["ingest", str(unknown), "--format", "apache9"])
    assert result.exit_code == 2 and "unknown --format" in result.output
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing.log")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_ingest_help() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "--quarantine" in result.output and "--mapping" in result.output
