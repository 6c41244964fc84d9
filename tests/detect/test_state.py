"""Window state: chunked scoring with carried state gives the whole-history features, in bounded memory."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import mamori.detect.scorer as scorer_module
from mamori.detect import Scorer, ScoringConfig, ScoringModel, WindowState
from mamori.features import extract_features


def _chunked_features(model: ScoringModel, events: pl.DataFrame, config: ScoringConfig, step: int,
                      related: bool, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Score in chunks and capture the feature rows of each chunk's own events."""
    captured: list[np.ndarray] = []
    original = scorer_module.extract_features

    def spy(frame, cfg, **kwargs):  # type: ignore[no-untyped-def]
        fm = original(frame, cfg, **kwargs)
        captured.append(fm.X.copy())  # the scorer standardises its matrix in place
        return fm

    monkeypatch.setattr(scorer_module, "extract_features", spy)
    scorer = Scorer(model, config)
    for start in range(0, events.height, step):
        chunk = events[start : start + step]
        scorer.score(chunk, related_context=related, explain_alerts=False)
        captured[-1] = captured[-1][-chunk.height :]
    return np.concatenate(captured)


@pytest.mark.parametrize(("step", "related"), [(1500, False), (97, True)])
def test_chunked_equals_whole_history(tiny_model: ScoringModel, sim_events: pl.DataFrame, step: int, related: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a state large enough to hold all history
    events = sim_events.head(4000 if related else sim_events.height)
    whole = extract_features(events, tiny_model.feature_config).X

    # Execute
    chunked = _chunked_features(tiny_model, events, ScoringConfig(horizon="7d", max_state_events=10**6), step,
                                related, monkeypatch)

    # Assert: every column, bit for bit
    np.testing.assert_array_equal(chunked, whole)


def test_short_horizon_keeps_windowed_columns_exact(tiny_model: ScoringModel, sim_events: pl.DataFrame,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: state reaches 1 h (= the long window); 24 h and lifetime columns become approximations
    whole = extract_features(sim_events, tiny_model.feature_config).X
    names = tiny_model.spec.names

    # Execute
    chunked = _chunked_features(tiny_model, sim_events, ScoringConfig(horizon="1h", max_state_events=10**6), 800,
                                False, monkeypatch)

    # Assert
    windowed = [i for i, n in enumerate(names) if n.endswith(("_short", "_long")) and "new_username" not in n]
    assert len(windowed) > 20
    np.testing.assert_array_equal(chunked[:, windowed], whole[:, windowed])
    request = [i for i, g in enumerate(tiny_model.spec.groups) if g in ("request", "lexical", "ngram_path")]
    np.testing.assert_array_equal(chunked[:, request], whole[:, request])


def test_state_is_bounded_by_budget_and_horizon(sim_events: pl.DataFrame) -> None:
    # Prepare
    state = WindowState(horizon_seconds=3600.0, max_events=500)

    # Execute
    for start in range(0, sim_events.height, 1000):
        state.append(sim_events[start : start + 1000])
        stats = state.stats()
        # Assert: never above the budget, never older than the horizon
        assert stats.events <= 500
        ts = state.events.get_column("@timestamp")
        assert (ts.max() - ts.min()).total_seconds() <= 3600.0
    assert state.stats().evicted == sim_events.height - state.stats().events
    assert set(state.events.columns) == set(scorer_module.WindowState(1, 1).events.columns)


def test_state_save_load(sim_events: pl.DataFrame, tmp_path) -> None:
    state = WindowState(horizon_seconds=86400.0, max_events=1000)
    state.append(sim_events.head(700))
    state.save(tmp_path / "s.parquet")
    other = WindowState(horizon_seconds=86400.0, max_events=1000)
    other.load(tmp_path / "s.parquet")
    assert other.events.equals(state.events)
