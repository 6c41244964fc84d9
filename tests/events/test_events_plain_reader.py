"""The plain-file batch reader cuts lines exactly like the streaming one (chunk and probe edges included)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mamori.events._source as source_mod
from mamori.events._source import LineBatch, _iter_plain_batches, iter_line_batches

_PARTS = st.sampled_from([b"", b"abc", b"x" * 23, b"\r", "\u00e9".encode(), b"\xff", b'1.2.3.4 - - "GET / HTTP/1.1"'])


def _normal(batches: list[LineBatch]) -> tuple[list[tuple[int, str]], list[tuple[int, bytes, str, int]]]:
    lines: list[tuple[int, str]] = []
    bad: list[tuple[int, bytes, str, int]] = []
    for batch in batches:
        lines.extend((batch.first_line + i, text) for i, text in enumerate(batch.materialize().to_list()))
        # the streaming reader keeps only the head it had buffered of an over-long line: compare one byte
        bad.extend((no, raw[:1], reason, full) for no, raw, reason, _detail, full in batch.bad)
    return lines, sorted(bad)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(_PARTS, max_size=14),
    end=st.sampled_from([b"", b"\n", b"\n\n"]),
    chunk=st.integers(1, 40),
    probe=st.integers(1, 12),
    max_line=st.integers(1, 40),
    batch=st.integers(1, 5),
)
def test_plain_reader_matches_streaming(
    tmp_path_factory: pytest.TempPathFactory,
    parts: list[bytes],
    end: bytes,
    chunk: int,
    probe: int,
    max_line: int,
    batch: int,
) -> None:
    data = b"\n".join(parts) + end
    path: Path = tmp_path_factory.mktemp("plain") / "f.log"
    path.write_bytes(data)
    streamed = iter_line_batches(
        io.BytesIO(data), "f.log", chunk_bytes=chunk, max_line_bytes=max_line, batch_lines=batch
    )
    old_probe = source_mod.PROBE_BYTES
    source_mod.PROBE_BYTES = probe
    try:
        plain = list(
            _iter_plain_batches(
                path, "f.log", chunk_bytes=chunk, max_line_bytes=max_line, batch_lines=batch, progress=None
            )
        )
    finally:
        source_mod.PROBE_BYTES = old_probe
    assert _normal(plain) == _normal(list(streamed))


def test_plain_reader_reports_progress(tmp_path: Path) -> None:
    data = b"a\nbb\nccc\n" * 50
    path = tmp_path / "f.log"
    path.write_bytes(data)
    seen: list[int] = []
    batches = list(
        _iter_plain_batches(path, "f.log", chunk_bytes=16, max_line_bytes=100, batch_lines=7, progress=seen.append)
    )
    assert sum(seen) == len(data)
    assert sum(b.n_lines for b in batches) == 150
