"""Scorer: the same scores as the offline pipeline; explained, deduplicated alerts with families and indicators."""

from __future__ import annotations

import numpy as np
import polars as pl

from mamori.detect import IndicatorIndex, MemoryAlertSink, Scorer, ScoringConfig, ScoringModel, alerts_to_stix
from mamori.features import extract_features
from mamori.intel import ip_indicator, serialize, validate_object


def test_scores_equal_offline_pipeline(tiny_model: ScoringModel, sim_events: pl.DataFrame) -> None:
    # Prepare
    events = sim_events.head(3000)
    X = extract_features(events, tiny_model.feature_config).X
    offline = tiny_model.detector().decision_function(tiny_model.standardizer().transform(X))

    # Execute
    scorer = Scorer(tiny_model, ScoringConfig(max_state_events=10**6))
    online = np.concatenate([scorer.score(events[i : i + 700], explain_alerts=False).scores
                             for i in range(0, events.height, 700)])

    # Assert
    np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-4)


def test_alerts_are_explained_deduplicated_and_matched(tiny_model: ScoringModel, sim_events: pl.DataFrame) -> None:
    # Prepare: the attack events' first source IP is a shared indicator
    attack_ip = sim_events.filter(pl.col("labels.is_attack")).get_column("source.ip").drop_nulls()[0]
    index = IndicatorIndex.from_objects([serialize(ip_indicator(attack_ip))])
    sink = MemoryAlertSink()
    scorer = Scorer(tiny_model, ScoringConfig(dedup_window="1h", top_k=3), indicators=index, sinks=[sink])

    # Execute
    result = scorer.score(sim_events)

    # Assert
    assert result.hits > 0 and len(result.alerts) == len(sink.alerts) > 0
    assert len(result.alerts) < result.hits  # deduplicated
    keys = [(a.entity["value"], a.timestamp[:13]) for a in result.alerts]
    assert len(keys) == len(set(keys))
    first = result.alerts[0]
    assert 1 <= len(first.top_features) <= 3 and all(f["contribution"] > 0 for f in first.top_features)
    assert first.family in tiny_model.families and first.score > first.threshold
    assert sum(a.count for a in result.alerts) + 0 <= result.hits
    matched = [a for a in result.alerts if a.indicators]
    assert all(a.entity["source.ip"] == attack_ip for a in matched)
    assert result.alert_rows and all(result.scores[r] > result.threshold for r in result.alert_rows)
    # labels never reach features: removing them changes nothing
    again = Scorer(tiny_model, ScoringConfig(dedup_window="1h")).score(
        sim_events.drop([c for c in sim_events.columns if c.startswith("labels.")]), explain_alerts=False)
    np.testing.assert_array_equal(again.scores, result.scores)


def test_set_model_swaps_without_losing_state(tiny_model: ScoringModel, sim_events: pl.DataFrame) -> None:
    scorer = Scorer(tiny_model)
    scorer.score(sim_events.head(500), explain_alerts=False)
    held = scorer.state.stats().events
    scorer.set_model(tiny_model.with_weights([w * 0 for w in tiny_model.weights], version=9))
    result = scorer.score(sim_events[500:600], explain_alerts=False)
    assert result.model_version == 9 and np.allclose(result.scores, result.scores[0])
    assert scorer.state.stats().events == held + 100


def test_sightings_from_alerts_are_valid_stix(tiny_model: ScoringModel, sim_events: pl.DataFrame) -> None:
    sink = MemoryAlertSink()
    Scorer(tiny_model, sinks=[sink]).score(sim_events, explain_alerts=False)
    objects = alerts_to_stix(sink.alerts, "bank-a")
    kinds = {o["type"] for o in objects}
    assert kinds == {"identity", "indicator", "sighting"}
    for obj in objects:
        assert validate_object(obj) == []
    assert not any("user" in str(o.get("description", "")) for o in objects)


def test_incremental_scorer_gives_the_batch_scores_and_alerts(tiny_model: ScoringModel,
                                                              sim_events: pl.DataFrame) -> None:
    # Prepare: the event-tail scorer on the whole frame at once
    events = sim_events.sort("@timestamp", maintain_order=True).head(3000)
    window_sink, online_sink = MemoryAlertSink(), MemoryAlertSink()
    expected = Scorer(tiny_model, ScoringConfig(max_state_events=10**6, dedup_window="1h"),
                      sinks=[window_sink]).score(events, explain_alerts=False)

    # Execute: per-entity aggregates, one event at a time for the first 200, then as dict rows in chunks
    scorer = Scorer(tiny_model, ScoringConfig(incremental=True, dedup_window="1h"), sinks=[online_sink])
    rows = events.drop([c for c in events.columns if c.startswith("labels.")]).to_dicts()
    parts = [scorer.score(events[i : i + 1], explain_alerts=False).scores for i in range(200)]
    parts += [scorer.score_rows(rows[i : i + 350], explain_alerts=False).scores for i in range(200, len(rows), 350)]

    # Assert
    np.testing.assert_allclose(np.concatenate(parts), expected.scores, rtol=1e-5, atol=1e-5)
    assert [a.id for a in online_sink.alerts] == [a.id for a in window_sink.alerts] != []
    stats = scorer.stats()
    assert stats["events_scored"] == 3000 and stats["state_entities"] > 0 and stats["state_events"] == 0


def test_alert_explanations_equal_torch_integrated_gradients(tiny_model: ScoringModel,
                                                              sim_events: pl.DataFrame) -> None:
    # Prepare: the alerts' standardised rows, explained by the torch reference (mamori.models.explain)
    from mamori.detect.scorer import _integrated_gradients, _linear_layers
    from mamori.models import explain

    scorer = Scorer(tiny_model, ScoringConfig(dedup_window="1h", top_k=4, explain_steps=16))
    result = scorer.score(sim_events)
    X = extract_features(sim_events, tiny_model.feature_config).X
    Z = scorer._loaded.standardize(X)[result.alert_rows]
    reference = explain(tiny_model.detector(), Z, tiny_model.spec, top_k=4, steps=16)

    # Execute
    layers = _linear_layers(tiny_model)
    assert layers is not None
    contrib = _integrated_gradients(layers, Z, 16)

    # Assert: the NumPy gradients give torch's contributions, and the alerts name torch's top features
    for i, ref in enumerate(reference):
        for c in ref.top:
            j = tiny_model.spec.names.index(c.name)
            assert abs(contrib[i, j] - c.contribution) <= 1e-4 * max(1.0, abs(c.contribution))
    assert len(result.alerts) == len(reference) > 0
    for alert, ref in zip(result.alerts, reference, strict=True):
        assert [f["name"] for f in alert.top_features] == [c.name for c in ref.top]
