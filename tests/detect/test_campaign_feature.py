"""Closing the cross-bank loop in live scoring: models that read the shared campaign-indicator column."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
import pytest

from mamori.detect import (
    CAMPAIGN_FEATURE,
    IndicatorIndex,
    Scorer,
    ScoringConfig,
    ScoringModel,
    train_simulated_model,
)
from mamori.intel import ip_indicator, serialize
from mamori.simulate import SimulationConfig, iter_bank_events

SIM = {"banks": 1, "days": 1, "scale": 0.02, "seed": 3}
CAMPAIGN_IP = "203.0.113.77"


def _campaign_index(ips: list[str], start: dt.datetime, end: dt.datetime) -> IndicatorIndex:
    """Campaign indicators as `mamori analytics` publishes them (label cross-bank), valid over [start, end)."""
    return IndicatorIndex.from_objects(
        serialize(ip_indicator(ip, valid_from=start, valid_until=end, labels=["cross-bank", "banks:3", "kind:ip"]))
        for ip in ips
    )


@pytest.fixture(scope="module")
def train_events() -> pl.DataFrame:
    """The simulated bank-day the campaign model is trained on."""
    _profile, events = next(iter(iter_bank_events(SimulationConfig(**SIM))))
    return events


@pytest.fixture(scope="module")
def campaign_model(train_events: pl.DataFrame) -> ScoringModel:
    """A model trained with the column: the attack sources of the training day were shared campaign indicators."""
    ips = train_events.filter(pl.col("labels.is_attack")).get_column("source.ip").drop_nulls().unique().to_list()
    ts = train_events.get_column("@timestamp")
    index = _campaign_index(ips, ts.min() - dt.timedelta(hours=1), ts.max() + dt.timedelta(hours=1))
    return train_simulated_model(log_format=None, epochs=2, hidden_layers=(16,), indicators=index, **SIM)


@pytest.fixture(scope="module")
def probe(sim_events: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Benign events of another simulated day, one of them (row ``i``) from the campaign's IP."""
    events = (sim_events.filter(~pl.col("labels.is_attack")).sort("@timestamp", maintain_order=True).head(400)
              .drop([c for c in sim_events.columns if c.startswith("labels.")]))
    i = 300
    events = events.with_columns(
        pl.when(pl.int_range(pl.len()) == i).then(pl.lit(CAMPAIGN_IP)).otherwise(pl.col("source.ip"))
        .alias("source.ip"))
    return events, i


def _window(events: pl.DataFrame) -> tuple[dt.datetime, dt.datetime]:
    ts = events.get_column("@timestamp")
    return ts.min(), ts.max()


def test_training_bundles_the_campaign_column(campaign_model: ScoringModel, tiny_model: ScoringModel,
                                              tmp_path) -> None:
    # Execute
    path = campaign_model.save(tmp_path / "campaign.npz")
    loaded = ScoringModel.load(path)

    # Assert: one more column than the plain model, last, and it survives a save/load
    assert loaded.spec.names == (*tiny_model.spec.names, CAMPAIGN_FEATURE)
    assert loaded.spec.groups[-1] == "campaign"
    assert loaded.metadata["campaign_hit_rows"] > 0


def test_published_indicator_raises_the_score_in_both_paths(campaign_model: ScoringModel,
                                                           probe: tuple[pl.DataFrame, int]) -> None:
    # Prepare: the campaign IP is published an hour before the day's first event, valid for three days
    events, i = probe
    start, _end = _window(events)
    index = _campaign_index([CAMPAIGN_IP], start - dt.timedelta(hours=1), start + dt.timedelta(days=3))
    rows = events.to_dicts()
    config = ScoringConfig(max_state_events=10**6)
    online = ScoringConfig(incremental=True)

    # Execute
    with_batch = Scorer(campaign_model, config, indicators=index).score(events, explain_alerts=False).scores
    without_batch = Scorer(campaign_model, config).score(events, explain_alerts=False).scores
    with_rows = Scorer(campaign_model, online, indicators=index).score_rows(rows, explain_alerts=False).scores
    without_rows = Scorer(campaign_model, online).score_rows(rows, explain_alerts=False).scores

    # Assert: feature 1 for that event only (same value from a frame and from dict rows), a higher score for it,
    # every other score unchanged, and the incremental path gives the batch path's scores
    expected = np.zeros(events.height, dtype=np.float32)
    expected[i] = 1.0
    assert np.array_equal(index.campaign_hits(events), expected)
    assert np.array_equal(index.campaign_hit_rows(rows), expected)
    assert with_batch[i] > without_batch[i]
    others = np.arange(events.height) != i
    np.testing.assert_array_equal(with_batch[others], without_batch[others])
    np.testing.assert_allclose(with_rows, with_batch, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(without_rows, without_batch, rtol=1e-5, atol=1e-5)


def test_expired_or_future_indicator_gives_zero(campaign_model: ScoringModel, probe: tuple[pl.DataFrame, int]
                                                ) -> None:
    # Prepare: one indicator expired before the day, one not yet valid (published after the event)
    events, i = probe
    start, end = _window(events)
    expired = _campaign_index([CAMPAIGN_IP], start - dt.timedelta(days=4), start - dt.timedelta(days=1))
    future = _campaign_index([CAMPAIGN_IP], end + dt.timedelta(minutes=1), end + dt.timedelta(days=3))
    baseline = Scorer(campaign_model, ScoringConfig(max_state_events=10**6)).score(events, explain_alerts=False)

    for index in (expired, future):
        # Execute
        batch = Scorer(campaign_model, ScoringConfig(max_state_events=10**6), indicators=index).score(
            events, explain_alerts=False)
        rows = Scorer(campaign_model, ScoringConfig(incremental=True), indicators=index).score_rows(
            events.to_dicts(), explain_alerts=False)

        # Assert: the column is 0, so the scores are those without any indicator
        assert index.campaign_hits(events).sum() == 0 and index.campaign_hit_rows(events.to_dicts()).sum() == 0
        np.testing.assert_array_equal(batch.scores, baseline.scores)
        np.testing.assert_allclose(rows.scores, baseline.scores, rtol=1e-5, atol=1e-5)


def test_network_indicator_and_other_labels(probe: tuple[pl.DataFrame, int]) -> None:
    # Prepare: the campaign's /24 as a cross-bank indicator, and the exact IP as an ordinary (non-campaign) one
    events, i = probe
    start, _end = _window(events)
    cidr = _campaign_index(["203.0.113.0/24"], start - dt.timedelta(hours=1), start + dt.timedelta(days=1))
    plain = IndicatorIndex.from_objects([serialize(ip_indicator(CAMPAIGN_IP, valid_from=start - dt.timedelta(hours=1),
                                                                 labels=["sighting"]))])
    rows = events.to_dicts()

    # Execute / Assert: the network hits in both forms; an indicator without the cross-bank label does not
    assert cidr.campaign_hits(events)[i] == 1 == cidr.campaign_hit_rows(rows)[i]
    assert plain.campaign_hits(events).sum() == 0 == plain.campaign_hit_rows(rows).sum()
    assert plain.campaign_hit_rows(rows, label=None)[i] == 1 == plain.campaign_hits(events, label=None)[i]


def test_no_index_scores_with_zeros_and_warns_once(campaign_model: ScoringModel, probe: tuple[pl.DataFrame, int],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    events, _i = probe
    scorer = Scorer(campaign_model, ScoringConfig(max_state_events=10**6))

    # Execute
    with caplog.at_level(logging.WARNING, logger="mamori.detect.scorer"):
        first = scorer.score(events[:200], explain_alerts=False)
        second = scorer.score(events[200:], explain_alerts=False)

    # Assert
    warnings = [r for r in caplog.records if CAMPAIGN_FEATURE in r.getMessage()]
    assert len(warnings) == 1
    assert first.scores.shape == (200,) and second.scores.shape == (events.height - 200,)
    assert np.isfinite(np.concatenate([first.scores, second.scores])).all()


def test_plain_and_campaign_models_swap_keeping_the_aggregates(campaign_model: ScoringModel,
                                                               tiny_model: ScoringModel,
                                                               probe: tuple[pl.DataFrame, int]) -> None:
    # Prepare: an incremental scorer on the plain model has seen the first half of the events
    events, _i = probe
    rows = events.to_dicts()
    scorer = Scorer(tiny_model, ScoringConfig(incremental=True))
    scorer.score_rows(rows[:200], explain_alerts=False)
    online = scorer.online

    # Execute: hot-swap to the model with the campaign column
    scorer.set_model(campaign_model)
    after = scorer.score_rows(rows[200:], explain_alerts=False).scores

    # Assert: same per-entity aggregates (the campaign column is not window state), the campaign model's scores
    fresh = Scorer(campaign_model, ScoringConfig(incremental=True))
    fresh.score_rows(rows[:200], explain_alerts=False)
    assert scorer.online is online
    np.testing.assert_allclose(after, fresh.score_rows(rows[200:], explain_alerts=False).scores, rtol=1e-6)


def test_train_demo_with_indicators_trains_with_the_column(monkeypatch: pytest.MonkeyPatch,
                                                           campaign_model: ScoringModel, tmp_path) -> None:
    # Prepare: a shared-indicator file; the (slow) simulation + training is replaced by the fixture's model
    import json

    from typer.testing import CliRunner

    import mamori.cli.cmd_score as cmd_score
    from mamori.cli.app import app

    now = dt.datetime(2025, 4, 21, tzinfo=dt.UTC)
    shared = tmp_path / "campaign.json"
    shared.write_text(json.dumps({"type": "bundle", "id": "bundle--6f5cf4d9-2f6b-4c4e-9d8b-0d7c2f5a9e11",
                                  "objects": [serialize(ip_indicator(CAMPAIGN_IP, valid_from=now,
                                                                     labels=["cross-bank"]))]}))
    seen: dict[str, object] = {}

    def fake_train(**kwargs: object) -> ScoringModel:
        seen.update(kwargs)
        return campaign_model

    monkeypatch.setattr(cmd_score, "train_simulated_model", fake_train)

    # Execute
    result = CliRunner().invoke(app, ["score", "--train-demo", str(tmp_path / "m.npz"), "--format", "nginx",
                                      "--indicators", str(shared)])

    # Assert: the indicator file reached the training as an index, and the saved model reads the column
    assert result.exit_code == 0, result.output
    index = seen["indicators"]
    assert isinstance(index, IndicatorIndex) and index.size == 1
    assert ScoringModel.load(tmp_path / "m.npz").spec.names[-1] == CAMPAIGN_FEATURE
    assert CAMPAIGN_FEATURE in result.output
