"""Every reader survives hostile input: random bytes, truncated lines, huge lines, invalid UTF-8, wrong field
counts. Nothing crashes, each bad line is quarantined with a reason, good lines are kept."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from events_samples import sample_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamori.events import FORMATS, Quarantine, ReadSummary, iter_event_batches, render_lines

MAX_LINE = 2000
TEXT_MIN_FIELDS = {"nginx": 9, "alb": 19, "envoy": 13}

_GOOD = {fmt: render_lines(sample_events(), fmt).to_list() for fmt in FORMATS}
_NO_NL = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b""))


@st.composite
def hostile_line(draw: st.DrawFn, fmt: str) -> tuple[str, bytes]:
    """(kind, line bytes). Kinds 'good' and 'blank' parse or are skipped; 'must_*' must be quarantined."""
    good = draw(st.sampled_from(_GOOD[fmt])).encode("utf-8")
    kind = draw(st.sampled_from(["good", "good", "blank", "random", "truncated", "invalid_utf8", "short", "huge"]))
    if kind == "good":
        return "good", good
    if kind == "blank":
        return "blank", draw(st.sampled_from([b"", b"   ", b"\r", b"\t"]))
    if kind == "random":
        return "random", draw(_NO_NL)
    if kind == "truncated":
        return "random", good[: draw(st.integers(1, len(good) - 1))]
    if kind == "invalid_utf8":
        at = draw(st.integers(0, len(good)))
        return "must_invalid_utf8", good[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + good[
            at:
        ]
    if kind == "huge":
        return "must_line_too_long", good + b" " + b"x" * draw(st.integers(MAX_LINE, 3 * MAX_LINE))
    # wrong field count
    if fmt in TEXT_MIN_FIELDS:
        tokens = good.split(b" ")
        k = draw(st.integers(1, 3))
        return "must_short", b" ".join(tokens[:k])
    return "must_short", good[: draw(st.integers(1, len(good) - 1))]  # a JSON prefix is never valid JSON


def _run(fmt: str, lines: list[tuple[str, bytes]], tmp_path: Path) -> tuple[ReadSummary, list[dict], pl.DataFrame]:
    path = tmp_path / f"hostile.{fmt}"
    path.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
    qpath = tmp_path / "q.jsonl"
    summary = ReadSummary(source=path.name, format=fmt)
    with Quarantine(qpath) as q:
        frames = list(
            iter_event_batches(path, fmt, quarantine=q, summary=summary, max_line_bytes=MAX_LINE, batch_lines=7)
        )
    records = [json.loads(x) for x in qpath.read_text(encoding="utf-8").splitlines()]
    frame = pl.concat(frames) if frames else pl.DataFrame()
    return summary, records, frame


def _check(fmt: str, lines: list[tuple[str, bytes]], summary: ReadSummary, records: list[dict]) -> None:
    assert summary.lines == len(lines)
    assert summary.parsed + summary.quarantined + summary.blank == summary.lines
    assert summary.quarantined == len(records)
    by_line = {r["line"]: r for r in records}
    assert len(by_line) == len(records), "one record per bad line"
    for number, (kind, _) in enumerate(lines, start=1):
        if kind.startswith("must_"):
            assert number in by_line, f"line {number} ({kind}) was not quarantined"
            record = by_line[number]
            assert record["reason"] and record["detail"]
            assert f"{number:,}" in record["detail"]
            if kind == "must_invalid_utf8":
                assert record["reason"] == "invalid_utf8"
                assert "raw_base64" in record
            if kind == "must_line_too_long":
                assert record["reason"] == "line_too_long"
                assert record["raw_bytes"] > MAX_LINE
        elif kind == "good":
            assert number not in by_line, f"good line {number} was quarantined: {by_line.get(number)}"
        elif kind == "blank":
            assert number not in by_line


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_lines(fmt: str, data: st.DataObject, tmp_path: Path) -> None:
    # Prepare
    lines = data.draw(st.lists(hostile_line(fmt), min_size=1, max_size=25))
    # Execute
    summary, records, frame = _run(fmt, lines, tmp_path)
    # Assert
    _check(fmt, lines, summary, records)
    good_paths = [p for (kind, _), p in zip(lines, _paths_of(fmt, lines), strict=True) if kind == "good"]
    got = frame.get_column("url.path").to_list() if frame.height else []
    it = iter(got)
    assert all(any(p == g for g in it) for p in good_paths), "good lines lost or reordered"


def _paths_of(fmt: str, lines: list[tuple[str, bytes]]) -> list[str | None]:
    index = {line: i for i, line in enumerate(_GOOD[fmt])}
    paths = sample_events().get_column("url.path").to_list()
    return [paths[index[raw.decode()]] if kind == "good" else None for kind, raw in lines]


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_garbage_gives_no_events_and_no_crash(fmt: str, tmp_path: Path) -> None:
    lines = [("must_invalid_utf8", b"\xff\xfe\x00garbage"), ("random", b"\x00\x01\x02"), ("random", b"{")]
    summary, records, frame = _run(fmt, lines, tmp_path)
    assert summary.parsed == 0
    assert summary.quarantined == 3
    assert {r["line"] for r in records} == {1, 2, 3}


def test_nginx_message_names_file_line_and_field_count(tmp_path: Path) -> None:
    path = tmp_path / "gw.log"
    good = _GOOD["nginx"][0]
    path.write_text("\n".join([good] * 3 + ['1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET / HTTP/1.1"']) + "\n")
    q = Quarantine()
    list(iter_event_batches(path, "nginx", quarantine=q))
    (record,) = q.records
    assert record["line"] == 4
    assert record["reason"] == "field_count"
    assert record["detail"].startswith(
        "read_nginx: line 4 of 'gw.log' has 5 fields, expected 7 (common format) or at least 9 (combined format)"
    )


def test_thousands_separator_in_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    good = _GOOD["nginx"][0]
    path.write_text("\n".join([good] * 1203 + ["garbage"]) + "\n")
    q = Quarantine()
    list(iter_event_batches(path, "nginx", quarantine=q))
    assert "line 1,204 of 'big.log'" in q.records[0]["detail"]


# -------------------------------------------------------------------------------- CSV with a mapping

MAPPING = """
[columns]
"@timestamp" = "time"
"source.ip" = "ip"
"url.path" = "path"
"http.response.status_code" = "status"
"""


@st.composite
def csv_line(draw: st.DrawFn) -> tuple[str, bytes]:
    n = draw(st.integers(0, 9))
    good = f"2026-05-01T00:00:0{n}Z,10.0.0.{n},/p{n},200".encode()
    kind = draw(st.sampled_from(["good", "good", "random", "invalid_utf8", "short", "long", "huge"]))
    if kind == "good":
        return "good", good
    if kind == "random":
        return "random", draw(_NO_NL).replace(b'"', b"")
    if kind == "invalid_utf8":
        return "must_invalid_utf8", good + b"\xff"
    if kind == "short":
        return "must_short", b",".join(good.split(b",")[:3])
    if kind == "long":
        return "must_long", good + b",extra"
    return "must_line_too_long", good + b"x" * (3 * 1024 * 1024)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(csv_line(), min_size=1, max_size=20))
def test_csv_hostile_rows(lines: list[tuple[str, bytes]], tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING)
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,ip,path,status\n" + b"\n".join(line for _, line in lines) + b"\n")
    q = Quarantine()
    summary = ReadSummary(source=path.name, format="csv")
    frames = list(iter_event_batches(path, "csv", mapping=mapping, quarantine=q, summary=summary, batch_lines=5))
    assert summary.parsed + summary.quarantined + summary.blank == summary.lines == len(lines)
    bad_lines = {r["line"] for r in q.records}
    for number, (kind, _) in enumerate(lines, start=2):
        if kind.startswith("must_"):
            assert number in bad_lines, (kind, number, q.records)
        if kind == "good":
            assert number not in bad_lines
    parsed = sum(f.height for f in frames)
    assert parsed >= sum(1 for k, _ in lines if k == "good")


# -------------------------------------------------------------------------------- CSIC raw HTTP

CSIC_GET = (
    "GET http://localhost:8080/tienda1/index.jsp?id={n} HTTP/1.1\r\nUser-Agent: Mozilla/5.0\r\n"
    "Host: localhost:8080\r\nCookie: JSESSIONID=ABC{n}\r\nConnection: close\r\n\r\n\r\n"
)
CSIC_POST = (
    "POST http://localhost:8080/tienda1/publico/anadir.jsp HTTP/1.1\r\nUser-Agent: Mozilla/5.0\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nid={n}&x=1\r\n\r\n"
)


@st.composite
def csic_record(draw: st.DrawFn) -> tuple[str, bytes]:
    n = draw(st.integers(0, 99))
    good = draw(st.sampled_from([CSIC_GET, CSIC_POST])).format(n=n).encode()
    kind = draw(st.sampled_from(["good", "good", "bad_header", "invalid_utf8"]))
    if kind == "good":
        return "good", good
    lines = good.split(b"\r\n")
    if kind == "bad_header":
        lines.insert(1, draw(_NO_NL).replace(b":", b"").replace(b"\r", b"") or b"x")
        return "must_bad", b"\r\n".join(lines)
    lines[1] = lines[1] + b"\xff"
    return "must_bad", b"\r\n".join(lines)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    junk=st.lists(_NO_NL.filter(lambda b: not b[:1].isupper()), max_size=3),
    records=st.lists(csic_record(), min_size=1, max_size=12),
)
def test_csic_hostile_records(junk: list[bytes], records: list[tuple[str, bytes]], tmp_path: Path) -> None:
    path = tmp_path / "normalTrafficTest.txt"
    path.write_bytes(b"".join(j + b"\n" for j in junk) + b"".join(r for _, r in records))
    q = Quarantine()
    summary = ReadSummary(source=path.name, format="csic")
    frames = list(iter_event_batches(path, "csic", quarantine=q, summary=summary, batch_lines=4))
    good = sum(1 for k, _ in records if k == "good")
    must_bad = sum(1 for k, _ in records if k.startswith("must_"))
    junk_lines = sum(1 for j in junk if j.strip())
    assert summary.parsed == good == sum(f.height for f in frames)
    assert summary.quarantined == must_bad + junk_lines == q.total
    if frames:
        frame = pl.concat(frames)
        assert frame.get_column("labels.is_attack").to_list() == [False] * good
        posts = frame.filter(pl.col("http.request.method") == "POST")
        assert posts.get_column("http.request.body.content").str.starts_with("id=").all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_unicode_line_breaks_in_a_bad_line_keep_its_quarantine_record_on_one_line(fmt: str, tmp_path: Path) -> None:
    # Found by hypothesis in CI: a line holding U+0085 (NEL) - and likewise U+2028 / U+2029 - was written raw into
    # the JSONL quarantine, and a reader splitting it with str.splitlines() cut the record in two
    lines = [("random", b"\xc2\x85\x00"), ("random", "x\u2028y\u2029z".encode())]
    summary, records, _ = _run(fmt, lines, tmp_path)
    assert summary.quarantined == len(records) == 2
    text = (tmp_path / "q.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 and "\u2028" not in text and "\x85" not in text
