"""distinct_rows: each row maps back to an equal distinct row, nulls included, and no row is repeated."""

from __future__ import annotations

import polars as pl

from mamori.features._distinct import distinct_rows


def test_rows_map_back_to_their_distinct_row_nulls_included() -> None:
    # Prepare: repeated values, a null in each column, a null pair
    frame = pl.DataFrame({"a": ["x", "y", None, "x", None, "y", "x"], "b": [1, 2, 3, 1, None, 2, None]})

    # Execute
    uniq, inverse = distinct_rows(frame)

    # Assert: gathering the distinct rows by the inverse gives the frame back, and they are all different
    assert uniq.columns == ["a", "b"]
    assert uniq[inverse.tolist()].equals(frame)
    assert uniq.height == frame.unique().height == 5
    assert uniq.is_duplicated().sum() == 0


def test_empty_frame() -> None:
    uniq, inverse = distinct_rows(pl.DataFrame(schema={"a": pl.String}))
    assert uniq.height == 0
    assert inverse.size == 0
