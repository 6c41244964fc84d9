"""The batch reader runs ahead by at most a number of events, in order, and hands its errors to the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import polars as pl
import pytest

from mamori.detect.batch import _prefetched


def _frames(sizes: list[int], read: list[int], fail_at: int | None = None) -> Iterator[pl.DataFrame]:
    for i, size in enumerate(sizes):
        if i == fail_at:
            raise ValueError("bad chunk")
        read.append(i)
        yield pl.DataFrame({"i": [i] * size})


def test_reader_runs_ahead_by_at_most_max_rows() -> None:
    read: list[int] = []
    out = _prefetched(_frames([10] * 20, read), max_rows=35)
    first = next(out)
    time.sleep(0.3)  # let the reader fill what it may
    assert first.get_column("i")[0] == 0
    # the one handed out, three queued (30 rows <= 35; a fourth would make 40), and one read and waiting
    assert len(read) == 1 + 3 + 1
    rest = [f.get_column("i")[0] for f in out]
    assert rest == list(range(1, 20))


def test_a_batch_larger_than_the_bound_still_passes() -> None:
    read: list[int] = []
    assert [f.height for f in _prefetched(_frames([50, 5, 50], read), max_rows=10)] == [50, 5, 50]


def test_reader_error_reaches_the_caller_and_an_early_stop_ends_the_reader() -> None:
    read: list[int] = []
    with pytest.raises(ValueError, match="bad chunk"):
        list(_prefetched(_frames([1, 1, 1], read, fail_at=2), max_rows=100))
    before = threading.active_count()
    out = _prefetched(_frames([1] * 1000, []), max_rows=2)
    next(out)
    out.close()  # the consumer stops early: the reader thread ends
    time.sleep(0.5)
    assert threading.active_count() <= before
