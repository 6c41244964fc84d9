"""Scoring a detector the way a bank's SOC would judge it, in the shape ``results.json`` reports.

The metrics themselves are :mod:`mamori.models`' (``evaluate_scores``, ``evaluate_by_family``, ``tpr_at_fpr``);
this module only renames them for the report and turns "undefined" into NaN so means over banks skip it.
"""

from __future__ import annotations

import math

import numpy as np

from mamori.models import evaluate_by_family, evaluate_scores
from mamori.models import tpr_at_fpr as _models_tpr_at_fpr

__all__ = ["detection_metrics", "family_metrics", "tpr_at_fpr"]


def _nan(value: float | int | None) -> float:
    return math.nan if value is None else float(value)


def tpr_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """True-positive rate at the best operating point with false-positive rate <= ``fpr``; NaN for one class."""
    return _nan(_models_tpr_at_fpr(y, scores, fpr))


def detection_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """PR-AUC, recall and false-positive rate at ``threshold``, and TPR at 1% FPR.

    Parameters
    ----------
    y : numpy.ndarray of shape (n,)
        1 for attack events, 0 for benign.
    scores : numpy.ndarray of shape (n,)
        Higher means more suspicious (logits, not probabilities: float32 sigmoids tie at 1.0).
    threshold : float
        Events with ``score > threshold`` are alerts.

    Returns
    -------
    dict
        ``pr_auc``, ``recall``, ``fpr``, ``tpr_at_1pct_fpr``, ``positives``, ``negatives``. A metric the test set
        cannot define (PR-AUC without attack events) is NaN.
    """
    m = evaluate_scores(y, scores, threshold)
    return {
        "pr_auc": _nan(m["pr_auc"]),
        "recall": _nan(m["recall"]),
        "fpr": _nan(m["fpr"]),
        "tpr_at_1pct_fpr": _nan(m["tpr_at_1pct_fpr"]),
        "positives": int(m["n_attack"] or 0),
        "negatives": int(m["n_benign"] or 0),
    }


def family_metrics(
    y: np.ndarray, families: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Per attack family: events, alerts among them at ``threshold``, recall, and PR-AUC against all benign."""
    out: dict[str, dict[str, float]] = {}
    for family, m in evaluate_by_family(y, families, scores, threshold).items():
        n = int(m["n_attack"] or 0)
        recall = _nan(m["recall"])
        out[family] = {"n": n, "flagged": int(round(recall * n)), "recall": recall, "pr_auc": _nan(m["pr_auc"])}
    return out
