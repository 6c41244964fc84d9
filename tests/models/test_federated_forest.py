"""The federated isolation forest: members' trees on their own rows, one consortium score, a third hybrid view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mamori.errors import ConfigError, NotFittedError
from mamori.models import (
    FederatedIsolationForest,
    HybridDetector,
    ScoreStats,
    average_path_length,
)


def test_average_path_length_matches_the_isolation_forest_paper() -> None:
    assert average_path_length(1) == 0.0
    assert average_path_length(2) == 1.0
    # c(256) = 2 H(255) - 2 * 255 / 256 ~ 10.24 (Liu, Ting, Zhou 2008).
    assert average_path_length(256) == pytest.approx(10.24, abs=0.01)


def test_members_forests_rank_an_outlier_above_benign_rows() -> None:
    rng = np.random.default_rng(0)
    benign = rng.normal(size=(1200, 5)).astype(np.float32)
    members = [benign[:100], benign[100:700], benign[700:1000]]  # unequal members, one smaller than max_samples
    forest = FederatedIsolationForest(n_estimators=45, seed=0).fit(members)
    assert len(forest.members_) == 3 and forest.weights_.sum() == pytest.approx(1.0)
    assert [len(f.estimators_) for f in forest.members_] == [5, 26, 14]  # trees in proportion to rows, >= 1 each
    assert forest.weights_[1] == pytest.approx(0.6)  # weighted by benign rows
    outliers = rng.normal(size=(50, 5)).astype(np.float32)
    outliers[:, [1, 2]] += 8.0
    s_benign, s_out = forest.decision_function(benign[1000:]), forest.decision_function(outliers)
    assert np.mean(s_out > np.quantile(s_benign, 0.95)) > 0.9
    assert np.all(s_benign < 0)  # negated depths, in edges of a 256-row tree
    again = FederatedIsolationForest(n_estimators=45, seed=0).fit(members).decision_function(outliers)
    assert np.array_equal(s_out, again)  # seeded


def test_forest_checks_its_inputs() -> None:
    with pytest.raises(ConfigError):
        FederatedIsolationForest(n_estimators=0)
    assert FederatedIsolationForest(n_estimators=3).allocate([1000, 1, 1]).tolist() == [1, 1, 1]
    assert FederatedIsolationForest(n_estimators=10).allocate([50, 30, 20]).tolist() == [5, 3, 2]
    with pytest.raises(NotFittedError):
        FederatedIsolationForest().decision_function(np.zeros((2, 3)))
    with pytest.raises(ConfigError):
        FederatedIsolationForest().fit([np.zeros((1, 3))])
    forest = FederatedIsolationForest(n_estimators=2)
    with pytest.raises(ConfigError):
        forest.combine([forest.fit_member(np.zeros((4, 3)))], [0.0])


def test_hybrid_with_a_forest_sums_three_calibrated_surprises(hybrid_toy: Callable[[int], dict[str, Any]]) -> None:
    toy = hybrid_toy(1)
    benign, attacks, X, clf, scorer, forest = (toy[k] for k in ("benign", "attacks", "X", "clf", "scorer", "forest"))
    hybrid = HybridDetector(clf, scorer, fusion="sum", forest=forest)
    parts = [hybrid.member_stats(benign[600:700]), hybrid.member_stats(benign[700:750])]
    assert len(parts[0]) == 3
    with pytest.raises(ConfigError):  # a forest needs its own calibration
        hybrid.calibrate_stats(parts[0][0], parts[0][1])
    hybrid.calibrate_stats(*(ScoreStats.merge(p[i] for p in parts) for i in range(3)))
    s = hybrid.component_scores(attacks[150:])
    assert len(s) == 3
    assert np.allclose(hybrid.decision_function(attacks[150:]), s[0] + s[1] + s[2])
    central = HybridDetector(clf, scorer, fusion="sum", forest=forest).calibrate(benign[600:750])
    assert np.allclose(central.decision_function(attacks[150:]), hybrid.decision_function(attacks[150:]))
    assert np.median(hybrid.decision_function(attacks[150:])) > np.median(hybrid.decision_function(benign[750:]))


def test_forest_passes_max_features_to_every_member() -> None:
    rng = np.random.default_rng(2)
    benign = rng.normal(size=(400, 8)).astype(np.float32)
    with pytest.raises(ConfigError):
        FederatedIsolationForest(max_features=0.0)
    forest = FederatedIsolationForest(n_estimators=10, max_features=0.5, seed=0).fit([benign[:200], benign[200:]])
    assert all(f.max_features == 0.5 and f.n_features_in_ == 8 for f in forest.members_)
    assert all(len(f.estimators_features_[0]) == 4 for f in forest.members_)  # each tree sees half the features
    assert FederatedIsolationForest().max_features == 1.0  # the default: every feature, as before
