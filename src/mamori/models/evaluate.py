"""Detection metrics: PR-AUC, recall and false-positive rate at a threshold, TPR at 1% FPR."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from mamori.errors import SchemaError

__all__ = ["evaluate_scores", "evaluate_by_family", "tpr_at_fpr"]

logger = logging.getLogger(__name__)


def _none_if_nan(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def tpr_at_fpr(y: Any, scores: Any, max_fpr: float = 0.01) -> float | None:
    """Return the largest true-positive rate reachable with a false-positive rate <= ``max_fpr``.

    Parameters
    ----------
    y : array-like
        0/1 labels.
    scores : array-like
        Scores, higher = more suspicious.
    max_fpr : float, default=0.01
        Allowed false-positive rate.

    Returns
    -------
    float or None
        None when ``y`` holds a single class.
    """
    y = np.asarray(y).ravel()
    if y.min(initial=0) == y.max(initial=0) or len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, np.asarray(scores, dtype=np.float64).ravel())
    return float(tpr[fpr <= max_fpr].max())


def evaluate_scores(y: Any, scores: Any, threshold: float) -> dict[str, float | int | None]:
    """Score a detector on labelled events.

    Parameters
    ----------
    y : array-like
        Shape ``(n,)``, 0 benign / 1 attack.
    scores : array-like
        Shape ``(n,)``, higher = more suspicious (logits, anomaly scores).
    threshold : float
        Alert when ``score > threshold``.

    Returns
    -------
    dict
        ``n``, ``n_attack``, ``n_benign``, ``pr_auc`` (scikit-learn average precision), ``roc_auc``,
        ``recall`` (true-positive rate at the threshold), ``fpr`` (at the threshold), ``precision``, ``f1``,
        ``alerts``, ``tpr_at_1pct_fpr``, ``threshold``. Metrics undefined for the data (e.g. PR-AUC without
        attacks) are None, so the dict serialises to JSON.

    Raises
    ------
    SchemaError
        If the lengths differ.
    """
    y = np.asarray(y).ravel().astype(np.int64)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise SchemaError(f"evaluate_scores: y has {y.size} rows but scores has {s.size}.")
    pred = s > threshold
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    both = n_pos > 0 and n_neg > 0
    recall = tp / n_pos if n_pos else math.nan
    precision = tp / (tp + fp) if (tp + fp) else math.nan
    f1 = 2 * precision * recall / (precision + recall) if n_pos and (tp + fp) and (precision + recall) > 0 else math.nan
    return {
        "n": int(y.size),
        "n_attack": n_pos,
        "n_benign": n_neg,
        "pr_auc": _none_if_nan(average_precision_score(y, s)) if both else None,
        "roc_auc": _none_if_nan(roc_auc_score(y, s)) if both else None,
        "recall": _none_if_nan(recall),
        "fpr": _none_if_nan(fp / n_neg if n_neg else math.nan),
        "precision": _none_if_nan(precision),
        "f1": _none_if_nan(f1),
        "alerts": int(pred.sum()),
        "tpr_at_1pct_fpr": tpr_at_fpr(y, s, 0.01) if both else None,
        "threshold": float(threshold),
    }


def evaluate_by_family(
    y: Any, families: Any, scores: Any, threshold: float
) -> dict[str, dict[str, float | int | None]]:
    """Per attack family: that family's events against all benign events.

    Parameters
    ----------
    y : array-like
        Shape ``(n,)``, 0/1.
    families : array-like of str
        Shape ``(n,)``, the family of each attack event (``"benign"`` for the rest), as from
        :func:`mamori.features.labels_from_events`.
    scores : array-like
        Shape ``(n,)``.
    threshold : float
        Alert threshold.

    Returns
    -------
    dict
        Family name to the :func:`evaluate_scores` dict of (that family's attacks + all benign events).
    """
    y = np.asarray(y).ravel().astype(np.int64)
    fam = np.asarray(families).astype(str).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not (y.size == fam.size == s.size):
        raise SchemaError(f"evaluate_by_family: y ({y.size}), families ({fam.size}), scores ({s.size}) differ.")
    benign = y == 0
    out: dict[str, dict[str, float | int | None]] = {}
    for family in sorted(set(fam[y == 1].tolist())):
        mask = benign | ((y == 1) & (fam == family))
        out[family] = evaluate_scores(y[mask], s[mask], threshold)
    return out
