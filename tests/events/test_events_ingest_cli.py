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
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, ["ingest", str(unknown), "--format", "nginx", "--out", str(out),
                                 "--quarantine", str(blocker / "q.jsonl")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"cannot write '{blocker}'" in said  # the quarantine's folder, not --out
    assert not out.exists()


def test_ingest_help() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "--quarantine" in result.output and "--mapping" in result.output


def _nginx_lines(n: int) -> bytes:
    return b"".join(b'1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET /p%d HTTP/1.1" 200 5 "-" "-"\n' % i
                    for i in range(n))


def test_a_truncated_upload_keeps_what_was_read_and_the_other_files(tmp_path: Path) -> None:
    import gzip

    good = tmp_path / "good.log"
    write_events(sample_events(), good, "nginx")  # 4 events
    full = gzip.compress(_nginx_lines(20_000))
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(full[: len(full) // 2])  # an upload broken off halfway
    unknown = tmp_path / "unknown.log"
    unknown.write_bytes(b"\x00\x01 not a log\n")
    out = tmp_path / "events.parquet"
    result = runner.invoke(app, ["ingest", str(good), str(cut), str(unknown), "--out", str(out),
                                 "--quarantine", str(tmp_path / "q.jsonl")])
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "cannot read 'cut.log.gz' after" in said and "corrupt or truncated compressed data" in said
    assert "cannot recognise 'unknown.log'" in said
    assert "2 of 3 file(s) not read to the end" in said
    frame = pl.read_parquet(out)  # written: every event read before each error
    paths = frame.get_column("url.path").to_list()
    from_cut = [p for p in paths if p.startswith("/p")]
    assert len(paths) == 4 + len(from_cut)
    assert 5_000 < len(from_cut) < 20_000
    assert from_cut == [f"/p{i}" for i in range(len(from_cut))]  # the file's first lines, in order


def test_nothing_read_means_no_output_and_exit_2(tmp_path: Path) -> None:
    import gzip
    import os

    cut = tmp_path / "cut.log.gz"
    long_path = os.urandom(20_000).hex().encode()  # compresses poorly: the cut lands inside line 1
    first = b'1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET /' + long_path + b' HTTP/1.1" 200 5\n'
    cut.write_bytes(gzip.compress(first + _nginx_lines(100))[:8_000])  # broken off inside the first line
    out = tmp_path / "events.parquet"
    result = runner.invoke(app, ["ingest", str(cut), "--format", "nginx", "--out", str(out),
                                 "--quarantine", str(tmp_path / "q.jsonl")])
    assert result.exit_code == 2, result.output
    assert "cut.log.gz" in result.output
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
