"""CSV with a TOML column mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamori.errors import ConfigError, SchemaError
from mamori.events import Quarantine, load_mapping, read_csv_mapped, read_events

MAPPING = """
timestamp_format = "%d/%m/%Y %H:%M:%S"
timezone = "Asia/Tokyo"
duration_unit = "ms"

[columns]
"@timestamp" = "time"
"source.ip" = "ip"
"http.response.status_code" = "status"
"event.duration" = "ms"
"labels.is_attack" = "label"

[constants]
"organization.id" = "bank-a"

[values."labels.is_attack"]
normal = "false"
attack = "true"
"""


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(MAPPING)
    return path


def test_reads_mapped_columns(tmp_path: Path, mapping: Path) -> None:
    # Prepare
    path = tmp_path / "log.csv"
    path.write_bytes(
        b"time,ip,status,ms,label\n"
        b"01/05/2026 09:00:00,1.2.3.4,200,12.5,normal\n"
        b"01/05/2026 09:00:01,1.2.3.5,abc,1,attack\n"
        b"02/05/2026 09:00:00,1.2.3.6,404,3,attack,extra\n"
        b"\xff,x,1,1,normal\n"
        b'01/05/2026 09:00:02,"multi\nline",500,,attack\n'
        b"31/02/2026 09:00:00,1.2.3.7,200,1,normal\n"
    )
    q = Quarantine()
    # Execute
    result = read_csv_mapped(path, mapping, quarantine=q)
    # Assert
    frame = result.frame
    assert frame.height == 2
    first = frame.row(0, named=True)
    assert first["@timestamp"].isoformat() == "2026-05-01T00:00:00+00:00"  # 09:00 JST
    assert first["event.duration"] == 12_500_000
    assert first["labels.is_attack"] is False
    assert first["organization.id"] == "bank-a"
    assert frame.row(1, named=True)["source.ip"] == "multi\nline"
    assert result.summary.by_reason == {"bad_value": 1, "csv_field_count": 1, "invalid_utf8": 1, "bad_timestamp": 1}
    reasons = {r["line"]: r["reason"] for r in q.records}
    assert reasons == {3: "bad_value", 4: "csv_field_count", 5: "invalid_utf8", 8: "bad_timestamp"}
    assert "field 'http.response.status_code'" in next(r["detail"] for r in q.records if r["line"] == 3)


def test_iter_event_batches_csv_needs_a_mapping(tmp_path: Path, mapping: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("time,ip,status,ms,label\n01/05/2026 09:00:00,1.2.3.4,200,1,normal\n")
    with pytest.raises(SchemaError, match="no column mapping was given"):
        read_events(path, "csv")
    assert read_events(path, "csv", mapping=mapping).summary.parsed == 1


def test_headerless_csv_with_indexes(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('header = false\ndelimiter = "\\t"\n[columns]\n"source.ip" = 2\n"url.path" = 1\n')
    path = tmp_path / "log.tsv"
    path.write_text("/a\t10.0.0.1\n/b\t10.0.0.2\n")
    frame = read_csv_mapped(path, mapping).frame
    assert frame.get_column("url.path").to_list() == ["/a", "/b"]
    assert frame.get_column("source.ip").to_list() == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ('[columns]\n"source.ipp" = "ip"\n', "not canonical event columns"),
        ('colums = 1\n[columns]\n"source.ip" = "ip"\n', "colums"),
        ('delimiter = ";;"\n[columns]\n"source.ip" = "ip"\n', "one character"),
        ("[columns\n", "not valid TOML"),
    ],
)
def test_bad_mappings_are_config_errors(toml: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=match):
        load_mapping(path)


def test_mapping_naming_a_missing_column(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('[columns]\n"source.ip" = "client"\n')
    path = tmp_path / "log.csv"
    path.write_text("ip\n1.2.3.4\n")
    with pytest.raises(SchemaError, match="names CSV column 'client'"):
        read_csv_mapped(path, mapping)
