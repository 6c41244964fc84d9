"""OnlineFeatures: one event at a time from per-entity aggregates gives the rows of a whole-history batch run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from mamori.errors import SchemaError
from mamori.features import FeatureConfig, OnlineFeatures, extract_features
from mamori.features.lexical import lexical_block, lexical_row
from mamori.simulate import SimulationConfig, iter_bank_events


@pytest.fixture(scope="module")
def stream() -> pl.DataFrame:
    """One simulated bank-day in time order (every attack family, full canonical events)."""
    _profile, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=1, scale=0.02, seed=11))))
    return events.sort("@timestamp", maintain_order=True)


def _rows(events: pl.DataFrame) -> list[dict[str, object]]:
    return events.drop([c for c in events.columns if c.startswith("labels.")]).to_dicts()


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(short_window="1m", long_window="10m",
                                                                   regularity_events=4, include_lexical=False)])
def test_stream_rows_equal_batch_rows(stream: pl.DataFrame, config: FeatureConfig) -> None:
    # Prepare: the batch matrix of the whole history
    whole = extract_features(stream, config)
    online = OnlineFeatures(whole.spec)
    rows = _rows(stream)

    # Execute: single events, then uneven micro-batches, carrying the aggregates along
    parts = [online.transform([r]) for r in rows[:300]]
    sizes = [1, 7, 64, 500]
    start, i = 300, 0
    while start < len(rows):
        step = sizes[i % len(sizes)]
        parts.append(online.transform(rows[start : start + step]))
        start, i = start + step, i + 1
    X = np.concatenate(parts)

    # Assert: every column, bit for bit
    assert X.shape == whole.X.shape and X.dtype == np.float32
    mismatched = [name for j, name in enumerate(whole.spec.names) if not np.array_equal(X[:, j], whole.X[:, j])]
    assert mismatched == []


def test_lexical_row_equals_polars_on_tricky_text() -> None:
    # Prepare: double encoding, unicode, control characters, ids and every keyword family
    paths = ["/api/v1/accounts/1234567/history", "/a/%252e%252e/%2e%2e/etc/passwd", "/Ünïcode/路径/x", "", None,
             "/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/t/abcdef0123456789abcdef0123456789"]
    queries = ["id=1'+OR+'1'='1", "q=<script>alert(1)</script>&x=%3Cimg%20onerror=1%3E", None,
               "cmd=;cat%20/etc/passwd|id&u=${jndi:ldap://x}", "a=1%00b\nc\t\x01", "mail=a.b@example.com&--x=/*y*/"]
    bodies = [None, "", "union select password from users where 1=1 -- ", "x=1; sleep(5)", "{\"a\": [1, 2]}",
              "héllo wörld 123"]

    # Execute
    batch, _names, _groups, _logs = lexical_block(pl.Series(paths, dtype=pl.String),
                                                  pl.Series(queries, dtype=pl.String),
                                                  pl.Series(bodies, dtype=pl.String), FeatureConfig())
    n_lex = len(lexical_row("", "", "")[0])
    rows = np.log1p(np.asarray([lexical_row(p, q, b)[0] for p, q, b in zip(paths, queries, bodies, strict=True)],
                               dtype=np.float32), dtype=np.float32)

    # Assert
    np.testing.assert_array_equal(rows, batch[:, :n_lex])


def test_state_is_bounded_and_late_events_are_scored(stream: pl.DataFrame) -> None:
    # Prepare
    spec = extract_features(stream.head(10), FeatureConfig()).spec
    online = OnlineFeatures(spec, horizon_seconds=600.0, max_entities=50, max_window_events=20)
    rows = _rows(stream)

    # Execute
    X = online.transform(rows[:3000])
    late = dict(rows[0], **{"@timestamp": rows[0]["@timestamp"] - dt.timedelta(days=2)})
    X_late = online.transform([late])

    # Assert: at most 50 entities per kind, idle ones evicted, a late event still gets a finite row
    counts = online.entity_counts()
    assert max(counts.values()) <= 50 and online.evicted > 0
    assert X.shape == (3000, spec.n_features) and np.isfinite(X_late).all()
    with pytest.raises(SchemaError, match="@timestamp"):
        online.transform([{"source.ip": "192.0.2.1"}])


def test_spec_of_another_config_is_refused() -> None:
    spec = extract_features(pl.DataFrame({"@timestamp": [dt.datetime(2025, 1, 1, tzinfo=dt.UTC)]}),
                            FeatureConfig(path_hash_buckets=8)).spec
    renamed = type(spec)(spec.names[:-1] + ("bogus",), spec.groups, spec.log1p, spec.config_json)
    with pytest.raises(SchemaError, match="OnlineFeatures"):
        OnlineFeatures(renamed)
