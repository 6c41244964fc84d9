"""Features computed once per distinct value and gathered back equal the same expressions row by row."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from mamori.features import FeatureConfig, extract_features
from mamori.features.behaviour import _request_exprs, request_columns
from mamori.features.lexical import lexical_block


def _per_row_request(events: pl.DataFrame, config: FeatureConfig) -> np.ndarray:
    """The request block the direct way: every expression over every row."""
    ctx = _request_exprs(config)
    X = events.select(e.cast(pl.Float64).fill_null(0.0).alias(name) for name, e, _ in ctx).to_numpy()
    X = np.asarray(X, dtype=np.float64).reshape(events.height, len(ctx))
    for j, (_, _, log1p) in enumerate(ctx):
        if log1p:
            X[:, j] = np.log1p(np.maximum(X[:, j], 0.0))
    out = X.astype(np.float32)
    out[~np.isfinite(out)] = 0.0
    return out


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "America/St_Johns", "Asia/Kathmandu"])
def test_request_block_on_distinct_values_equals_row_by_row(bank_events: pl.DataFrame, timezone: str) -> None:
    # Prepare: the toy bank plus rows with null / odd methods, user agents and AS fields, and times from before
    # 1973 (zones then had offsets with seconds: those rows must not be computed per minute)
    config = FeatureConfig(timezone=timezone)
    odd = bank_events.head(6).with_columns(
        pl.Series("user_agent.original", [None, "", "-", "curl/8.1", "Mozilla/5.0", None], dtype=pl.String),
        pl.Series("http.request.method", [None, "get", "PATCH", "FOO", "POST", None], dtype=pl.String),
        pl.Series("source.as.number", [None, 16509, None, 1, 2, None],
                  dtype=bank_events.schema["source.as.number"]),
        pl.Series("source.as.organization.name", ["Hetzner", None, "Tiny ISP", None, "", None], dtype=pl.String),
    )
    early = odd.with_columns(pl.col("@timestamp").dt.offset_by("-60y"))

    for events in (bank_events, pl.concat([bank_events, odd]), pl.concat([early, bank_events])):
        # Execute
        X, names, _groups, _logs = request_columns(events, config)

        # Assert: every column, bit for bit
        expected = _per_row_request(events, config)
        assert X.dtype == np.float32 and X.shape == expected.shape
        assert [n for j, n in enumerate(names) if not np.array_equal(X[:, j], expected[:, j])] == []


def test_request_block_of_no_events(bank_events: pl.DataFrame) -> None:
    X, names, _groups, _logs = request_columns(bank_events.clear(), FeatureConfig())
    assert X.shape == (0, len(names))


def test_lexical_block_gathered_equals_one_request_at_a_time() -> None:
    # Prepare: repeated raw requests, different raw requests with the same normalised text (ids, case,
    # encodings), and nulls
    paths = ["/api/v1/accounts/1234567/history", "/api/v1/accounts/7654321/history", "/API/v1/accounts/1/history",
             "/a/%2e%2e/etc/passwd", "/a/../etc/passwd", None, "", "/api/v1/accounts/1234567/history"]
    queries = ["id=1", "id=2", None, "q=%3Cscript%3E", "q=<script>", None, "", "id=1"]
    bodies = [None, None, None, "x=1; sleep(5)", "X=1; SLEEP(5)", None, "", None]
    config = FeatureConfig()

    # Execute
    batch, names, _groups, _logs = lexical_block(pl.Series(paths, dtype=pl.String),
                                                 pl.Series(queries, dtype=pl.String),
                                                 pl.Series(bodies, dtype=pl.String), config)
    one_by_one = np.concatenate([
        lexical_block(pl.Series([p], dtype=pl.String), pl.Series([q], dtype=pl.String),
                      pl.Series([b], dtype=pl.String), config)[0]
        for p, q, b in zip(paths, queries, bodies, strict=True)
    ])

    # Assert
    assert batch.shape == (len(paths), len(names)) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch, one_by_one)
    np.testing.assert_array_equal(batch[0], batch[-1])
    assert not np.array_equal(batch[0], batch[2])  # the upper-case letter is a raw-text count


def test_time_ordered_and_shuffled_input_give_the_same_rows(bank_events: pl.DataFrame) -> None:
    # Prepare: the events in time order (the sort is skipped) and the same events shuffled (it is not)
    ordered = bank_events.sort("@timestamp", maintain_order=True)
    perm = np.random.default_rng(0).permutation(ordered.height)
    shuffled = ordered[perm.tolist()]

    # Execute
    a = extract_features(ordered).X
    b = extract_features(shuffled).X

    # Assert: row i of the shuffled run is the ordered run's row perm[i] (ties keep input order, so compare
    # only when no two events share a timestamp)
    assert ordered.get_column("@timestamp").n_unique() == ordered.height
    np.testing.assert_array_equal(b, a[perm])


def test_before_1973_uses_the_row_by_row_path(bank_events: pl.DataFrame) -> None:
    # a time zone whose 1960 offset had seconds (Liberia, -0:44:30): local minutes differ from UTC minutes'
    config = FeatureConfig(timezone="Africa/Monrovia")
    events = bank_events.head(50).with_columns(
        (pl.datetime(1960, 3, 1, 12, 34, 10, time_zone="UTC") + pl.duration(seconds=pl.int_range(pl.len()) * 7))
        .alias("@timestamp"))
    X, _names, _groups, _logs = request_columns(events, config)
    np.testing.assert_array_equal(X, _per_row_request(events, config))
    assert dt.datetime(1973, 1, 1, tzinfo=dt.UTC) > events.get_column("@timestamp").max()
