"""Distinct rows of a frame and each row's index into them: the shared step of the features computed per value."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["distinct_rows"]


def distinct_rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """The distinct rows of ``frame`` (in no set order) and, per row, the index of its distinct row.

    One hash grouping instead of ``unique`` then a join back (which hashes every row twice); null is a value
    like any other. ``frame.columns`` must not include ``__row``.
    """
    groups = frame.with_row_index("__row").group_by(frame.columns, maintain_order=False).agg(pl.col("__row"))
    members = groups.get_column("__row")
    inverse = np.empty(frame.height, dtype=np.int64)
    inverse[members.explode().to_numpy()] = np.repeat(np.arange(groups.height, dtype=np.int64),
                                                      members.list.len().to_numpy())
    return groups.drop("__row"), inverse
