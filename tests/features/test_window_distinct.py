"""The NumPy window-distinct counts equal the polars as-of-join definition, column by column."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mamori.features import FeatureConfig
from mamori.features.behaviour import T, _Groups, _k, _key, _window_distinct, add_window_distinct, prepare_frame

_PAIRS = [("ip", "uname"), ("ip", "uid"), ("ip", "path"), ("asn", "ip"), ("uname", "ip"), ("sess", "path"),
          ("dev", "uname"), ("ja3", "ua")]


@pytest.mark.parametrize("window_s", [1, 300, 3600, 86400])
def test_numpy_distinct_equals_polars(bank_events: pl.DataFrame, window_s: int) -> None:
    # Prepare: the sorted frame with hashed keys, as behaviour_columns sees it
    config = FeatureConfig()
    frame = prepare_frame(bank_events.with_row_index("__row"), config).with_columns(
        pl.col(T).dt.epoch("ns").alias("__tns")).collect()
    t = frame.get_column("__tns").to_numpy().astype(np.int64)
    w = window_s * 10**9

    def ids(short: str) -> tuple[np.ndarray, np.ndarray]:
        key, present = _key(frame, short)
        return np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(-1), present

    for entity, other in _PAIRS:
        key, present = _key(frame, entity)
        # Execute
        mine = _window_distinct(t, _Groups(t, key, present), *ids(entity), *ids(other), w)
        ref = add_window_distinct(frame.select(T, _k(entity), _k(other)), entity, other, w, "__d")
        expected = np.where(present, ref.get_column("__d").to_numpy().astype(np.float64), 0.0)
        # Assert
        np.testing.assert_array_equal(mine, expected, err_msg=f"{entity}/{other} over {window_s} s")
        assert mine.max() > 0
