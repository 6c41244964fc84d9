"""The federated k-means distance detector: members cluster their own benign rows, share large clusters' centres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mamori.errors import ConfigError, NotFittedError
from mamori.models.kmeans import FederatedKMeans


def test_members_centroids_rank_an_outlier_above_benign_rows() -> None:
    rng = np.random.default_rng(0)
    benign = rng.normal(size=(1200, 5))
    members = [benign[:100], benign[100:700], benign[700:1000]]
    km = FederatedKMeans(n_clusters=20, seed=0).fit(members)
    assert km.allocate([100, 600, 300]).tolist() == [3, 11, 6]  # clusters in proportion to rows, >= 1 each
    assert len(km.member_sizes_) == 3 and len(km.centroids_) == sum(km.member_sizes_) <= 20  # small ones dropped
    assert km.centroids_.shape[1] == 5
    outliers = rng.normal(size=(50, 5))
    outliers[:, [1, 2]] += 8.0
    s_benign, s_out = km.decision_function(benign[1000:]), km.decision_function(outliers)
    assert np.mean(s_out > np.quantile(s_benign, 0.99)) > 0.95
    again = FederatedKMeans(n_clusters=20, seed=0).fit(members).decision_function(outliers)
    assert np.array_equal(s_out, again)  # seeded


def test_small_clusters_are_never_shared() -> None:
    rng = np.random.default_rng(1)
    rows = np.r_[rng.normal(size=(60, 3)), [[50.0, 50.0, 50.0]]]  # one far row would be a centroid of its own
    km = FederatedKMeans(n_clusters=4, min_cluster_size=5, seed=0).fit([rows])
    assert np.all(np.abs(km.centroids_) < 10)  # the lone row's cluster (1 row) was dropped
    tiny = FederatedKMeans(n_clusters=4, min_cluster_size=5).fit_member(rows[:4])
    assert tiny.shape == (0, 3)  # fewer rows than one cluster may hold: shares nothing


def test_kmeans_checks_its_inputs() -> None:
    with pytest.raises(ConfigError):
        FederatedKMeans(n_clusters=0)
    with pytest.raises(ConfigError):
        FederatedKMeans(min_cluster_size=0)
    assert FederatedKMeans(n_clusters=10).allocate([50, 30, 20]).tolist() == [5, 3, 2]
    assert FederatedKMeans(n_clusters=3).allocate([1000, 1, 1]).tolist() == [1, 1, 1]
    with pytest.raises(NotFittedError):
        FederatedKMeans().decision_function(np.zeros((2, 3)))
    with pytest.raises(ConfigError):
        FederatedKMeans().fit([np.zeros((0, 3))])
    with pytest.raises(ConfigError):
        FederatedKMeans(min_cluster_size=5).fit([np.zeros((3, 3))])  # nobody could share a centroid


def test_trust_model_gates_the_hybrids_classifier_surprise(hybrid_toy: Callable[[int], dict[str, Any]]) -> None:
    from mamori.models import HybridDetector, ScoreStats

    toy = hybrid_toy(3)
    benign, attacks, X, clf, scorer, forest = (toy[k] for k in ("benign", "attacks", "X", "clf", "scorer", "forest"))
    trust = FederatedKMeans(n_clusters=12, seed=0).fit([X[:400], X[400:]])  # labelled rows, attacks too
    with pytest.raises(ConfigError):
        HybridDetector(clf, scorer, forest=forest, trust=trust, trust_band=(3.0, 1.0))
    plain = HybridDetector(clf, scorer, fusion="sum", forest=forest).calibrate(benign[600:750])
    gated = HybridDetector(clf, scorer, fusion="sum", forest=forest, trust=trust).calibrate(benign[600:750])
    assert len(gated.member_stats(benign[:10])) == 4 and len(gated.component_scores(benign[:10])) == 3
    # Federated calibration: merged histograms in member_stats' order give the same detector.
    parts = [gated.member_stats(benign[600:700]), gated.member_stats(benign[700:750])]
    fed = HybridDetector(clf, scorer, fusion="sum", forest=forest, trust=trust)
    fed.calibrate_stats(*(ScoreStats.merge(p[i] for p in parts) for i in range(4)))
    assert np.allclose(fed.decision_function(attacks[150:]), gated.decision_function(attacks[150:]))
    # Rows like the training rows keep the classifier's full vote; a row unlike any of them loses it.
    near = attacks[150:]
    s_plain, s_gated = plain.component_scores(near)[0], gated.component_scores(near)[0]
    s_trust = -np.log10(gated.trust_stats_.tail_probability(trust.decision_function(near)))
    assert np.allclose(s_gated[s_trust <= 1.0], s_plain[s_trust <= 1.0])
    far = benign[750:760].copy()
    far[:, 3] += 40.0  # far from every centroid, benign or attack
    assert np.all(gated.component_scores(far)[0] == 0.0)
    # Without a forest the trust statistics come third in member_stats and are recognised as such.
    no_forest = HybridDetector(clf, scorer, fusion="sum", trust=trust)
    no_forest.calibrate_stats(*no_forest.member_stats(benign[600:750]))
    assert no_forest.forest_stats_ is None and no_forest.trust_stats_ is not None
