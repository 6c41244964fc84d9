"""Benchmark metrics: F1 threshold from validation, TPR at 1% FPR, seen vs unseen categories."""

from __future__ import annotations

import numpy as np

from mamori.bench import best_f1_threshold, score_metrics


def test_best_f1_threshold_separates_a_clean_split() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    t = best_f1_threshold(y, s)
    assert 0.3 < t <= 0.8
    assert best_f1_threshold(np.zeros(3), np.array([1.0, 2.0, 3.0])) > 3.0  # no attacks: no alerts
    assert best_f1_threshold(np.ones(3), np.array([1.0, 2.0, 3.0])) == 1.0  # attacks only: everything alerts


def test_score_metrics_reports_seen_and_unseen_separately() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0] * 1000 + [1] * 200)
    cats = np.array(["normal"] * 1000 + ["seen"] * 100 + ["new"] * 100)
    scores = np.concatenate([rng.normal(0, 1, 1000), rng.normal(6, 1, 100), rng.normal(0, 1, 100)])
    m = score_metrics(y, scores, threshold=3.0, categories=cats, unseen={"new"})
    assert m["seen"]["tpr_at_1pct_fpr"] > 0.95
    assert m["unseen"]["tpr_at_1pct_fpr"] < 0.1
    assert m["unseen"]["n"] == 100
    assert 0.4 < m["tpr_at_1pct_fpr"] < 0.6
    assert 0 < m["f1"] < 1 and 0 <= m["fpr"] < 0.01
