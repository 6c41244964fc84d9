from __future__ import annotations

import json

import numpy as np

from mamori.models import evaluate_by_family, evaluate_scores, tpr_at_fpr


def test_metrics_on_a_known_case() -> None:
    # Prepare: 4 attacks, 96 benign; one attack scored below the threshold, two benign above it
    y = np.r_[np.ones(4), np.zeros(96)]
    scores = np.r_[[5.0, 4.0, 3.0, -1.0], np.linspace(-5, 2.5, 96)]
    # Execute
    m = evaluate_scores(y, scores, threshold=2.0)
    # Assert
    assert m["n_attack"] == 4 and m["n_benign"] == 96
    assert m["recall"] == 0.75
    assert m["fpr"] == (np.linspace(-5, 2.5, 96) > 2.0).sum() / 96
    assert 0 < m["pr_auc"] <= 1
    json.dumps(m)


def test_single_class_gives_none_not_nan() -> None:
    m = evaluate_scores(np.zeros(10), np.arange(10.0), threshold=8.5)
    assert m["pr_auc"] is None and m["recall"] is None and m["fpr"] == 0.1
    json.dumps(m)


def test_tpr_at_one_percent_fpr() -> None:
    y = np.r_[np.ones(100), np.zeros(1000)]
    scores = np.r_[np.linspace(0, 10, 100), np.linspace(-10, 5, 1000)]
    tpr = tpr_at_fpr(y, scores, 0.01)
    assert tpr is not None and 0.45 < tpr < 0.55


def test_by_family() -> None:
    y = np.r_[np.ones(6), np.zeros(50)]
    fam = np.array(["a", "a", "a", "b", "b", "b"] + ["benign"] * 50)
    scores = np.r_[[9, 9, 9, -9, -9, 9], np.zeros(50)]
    out = evaluate_by_family(y, fam, scores, threshold=1.0)
    assert out["a"]["recall"] == 1.0 and abs(out["b"]["recall"] - 1 / 3) < 1e-9
    assert out["a"]["n"] == 53
