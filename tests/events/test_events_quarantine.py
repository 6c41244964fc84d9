"""The quarantine file: one JSON record per bad line, safe for any bytes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mamori.errors import TruncatedInputError
from mamori.events import REASONS, Quarantine
from mamori.events._source import iter_line_batches


def test_records_are_json_lines_with_reason_and_raw(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "q.jsonl"
    with Quarantine(path, max_raw_bytes=8) as q:
        q.add("gw.log", 3, b"\xff\xfebad line", "invalid_utf8", "line 3 is not UTF-8")
        q.add("gw.log", 9, "0123456789abcdef", "field_count", "line 9 ...")
    records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in records] == [3, 9]
    assert records[0]["raw"] == "\\xff\\xfebad li"
    assert base64.b64decode(records[0]["raw_base64"]) == b"\xff\xfebad li"
    assert records[1] == {
        "source": "gw.log",
        "line": 9,
        "reason": "field_count",
        "detail": "line 9 ...",
        "raw": "01234567",
        "raw_bytes": 16,
        "truncated": True,
    }
    assert q.counts == {"invalid_utf8": 1, "field_count": 1}
    assert set(q.counts) <= set(REASONS)


def test_empty_quarantine_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    with Quarantine(path):
        pass
    assert path.read_text() == ""


def test_in_memory_quarantine_keeps_a_bounded_number(tmp_path: Path) -> None:
    q = Quarantine(keep=2)
    for i in range(5):
        q.add("x", i, "raw", "no_match", "d")
    assert q.total == 5
    assert len(q.records) == 2


def test_line_batches_across_chunk_boundaries() -> None:
    import io

    lines = [b"a" * n for n in (0, 1, 5, 17, 3, 40, 2)] + [b"z" * 100, b"tail"]
    data = b"\n".join(lines)  # no final newline
    batches = list(iter_line_batches(io.BytesIO(data), "t", chunk_bytes=7, max_line_bytes=50, batch_lines=3))
    for b in batches:
        b.materialize()
    seen: list[str] = []
    numbers: list[int] = []
    bad: list[tuple[int, str]] = []
    for b in batches:
        seen.extend(b.lines.to_list())
        numbers.extend(range(b.first_line, b.first_line + b.lines.len()))
        bad.extend((x[0], x[2]) for x in b.bad)
    assert numbers == list(range(1, len(lines) + 1))
    assert bad == [(8, "line_too_long")]
    expected = [x.decode() for x in lines]
    expected[7] = ""
    assert seen == expected


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    import gzip

    import pytest

    from mamori.errors import SchemaError
    from mamori.events import read_events

    full = gzip.compress(
        b"".join(
            b'1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET /%d HTTP/1.1" 200 5 "-" "-"\n' % i for i in range(20000)
        )
    )
    path = tmp_path / "cut.log.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(SchemaError, match="cannot read 'cut.log.gz' after .* corrupt or truncated") as caught:
        read_events(path, "nginx")
    assert isinstance(caught.value, TruncatedInputError) and caught.value.offset > 500_000


def test_a_truncated_gzip_hands_over_the_lines_before_the_damage_then_raises(tmp_path: Path) -> None:
    # a buffered 16 MiB read that met the cut dropped everything it had decompressed: a cut file gave no line
    import gzip

    import pytest

    from mamori.events import iter_event_batches

    lines = 20_000
    full = gzip.compress(b"".join(b'1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET /%d HTTP/1.1" 200 5 "-" "-"\n' % i
                                  for i in range(lines)))
    path = tmp_path / "cut.log.gz"
    path.write_bytes(full[: len(full) // 2])
    seen: list[str] = []
    with pytest.raises(TruncatedInputError) as caught:
        for batch in iter_event_batches(path, "nginx", batch_lines=1_000):
            seen += batch.get_column("url.path").to_list()
    assert 5_000 < len(seen) < lines
    assert seen == [f"/{i}" for i in range(len(seen))]
    line_bytes = len(b'1.2.3.4 - - [01/May/2026:00:00:00 +0000] "GET /1 HTTP/1.1" 200 5 "-" "-"\n')
    assert caught.value.offset >= len(seen) * line_bytes  # the offset is where reading stopped, not 0


def test_plain_file_starting_with_gzip_magic_is_read_as_text(tmp_path: Path) -> None:
    from mamori.events import read_events

    path = tmp_path / "odd.log"
    path.write_bytes(b"\x1f\x8b not gzip\n")
    result = read_events(path, "nginx")
    assert result.summary.quarantined == 1
