"""detect_format recognises each format from its first lines, or says clearly that it cannot."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from events_samples import sample_events

from mamori.errors import SchemaError
from mamori.events import FORMATS, detect_format, read_events, write_events

ALB_AWS_EXAMPLE = (
    "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 "
    '0.086 0.048 0.037 200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" '
    "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
    "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "
    '"Root=1-58337281-1d84f3d73c47ec4e58577259" "www.example.com" '
    '"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 '
    '2018-07-02T22:22:48.364000Z "authenticate,forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_123456'
)
ENVOY_DOCS_EXAMPLE = (
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" '
    '"nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"'
)
NGINX_PLAIN_COMBINED = (
    '93.184.216.34 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)
OTEL_LINE = (
    '{"timestamp": "2026-05-01T00:00:00Z", "client.address": "192.0.2.1", "client.port": 5555, '
    '"http.request.method": "GET", "url.path": "/x", "http.response.status_code": 200, '
    '"server.address": "api.bank.example", "enduser.id": "c-1"}'
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_detects_what_the_writers_write(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "log"
    write_events(sample_events(), path, fmt)
    assert detect_format(path) == fmt


@pytest.mark.parametrize(
    ("line", "fmt"),
    [(ALB_AWS_EXAMPLE, "alb"), (ENVOY_DOCS_EXAMPLE, "envoy"), (NGINX_PLAIN_COMBINED, "nginx"), (OTEL_LINE, "ecs")],
)
def test_detects_real_world_examples(line: str, fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "real.log"
    path.write_text(line + "\n")
    assert detect_format(path) == fmt
    result = read_events(path)
    assert result.summary.parsed == 1, result.summary


def test_real_world_values_are_read(tmp_path: Path) -> None:
    path = tmp_path / "alb.log"
    path.write_text(ALB_AWS_EXAMPLE + "\n")
    row = read_events(path).frame.row(0, named=True)
    assert row["source.ip"] == "192.168.131.39"
    assert row["source.port"] == 2817
    assert row["url.domain"] == "www.example.com"
    assert row["url.path"] == "/"
    assert row["event.duration"] == 171_000_000
    assert row["http.request.id"] == "Root=1-58337281-1d84f3d73c47ec4e58577259"
    path.write_text(NGINX_PLAIN_COMBINED + "\n")
    row = read_events(path).frame.row(0, named=True)
    assert row["user.name"] == "frank"
    assert row["@timestamp"].isoformat() == "2000-10-10T20:55:36+00:00"
    path.write_text(OTEL_LINE + "\n")
    row = read_events(path).frame.row(0, named=True)
    assert (row["source.ip"], row["source.port"], row["url.domain"], row["user.id"]) == (
        "192.0.2.1",
        5555,
        "api.bank.example",
        "c-1",
    )


def test_detects_gzip_and_csic(tmp_path: Path) -> None:
    path = tmp_path / "gw.log.gz"
    write_events(sample_events(), path, "envoy")
    assert detect_format(path) == "envoy"
    csic = tmp_path / "normalTrafficTest.txt.gz"
    with gzip.open(csic, "wb") as fh:
        fh.write(b"GET http://localhost:8080/a HTTP/1.1\r\nHost: localhost:8080\r\n\r\n\r\n")
    assert detect_format(csic) == "csic"


def test_nested_ecs_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text(
        '{"@timestamp": "2026-05-01T00:00:00.5Z", "source": {"ip": "10.0.0.1", "as": {"number": 64500}}, '
        '"url": {"path": "/v1"}, "labels": {"is_attack": true, "attack_family": "ato"}, "event": {"duration": 5}}\n'
    )
    assert detect_format(path) == "ecs"
    row = read_events(path).frame.row(0, named=True)
    assert (row["source.ip"], row["source.as.number"], row["url.path"]) == ("10.0.0.1", 64500, "/v1")
    assert (row["labels.is_attack"], row["labels.attack_family"], row["event.duration"]) == (True, "ato", 5)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "no non-blank lines"),
        ("hello world\nthis is not a log\n", "cannot recognise 'x.log'"),
        ("a,b,c\n1,2,3\n", "pass --format csv --mapping"),
        ("{not json\n{also not\n", "only 0 of its first 2 lines are JSON objects"),
    ],
)
def test_says_clearly_when_it_cannot(content: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text(content)
    with pytest.raises(SchemaError, match=match):
        detect_format(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such file"):
        detect_format(tmp_path / "nope.log")
