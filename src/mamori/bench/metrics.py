"""Benchmark metrics: ROC-AUC, PR-AUC, F1 at a threshold chosen on validation, TPR at 1% FPR; seen vs unseen."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from mamori.compare.metrics import tpr_at_fpr

__all__ = ["best_f1_threshold", "score_metrics"]


def best_f1_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The threshold that maximises F1 on validation rows (alerts are ``score >= threshold``).

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels of validation rows.
    scores : numpy.ndarray
        Their scores.

    Returns
    -------
    float
        With both classes: the F1-best threshold. Without attacks: just above the highest score (no
        alerts). Without benign rows: the lowest score (everything alerts). That is what such a member can
        honestly pick from its own data.
    """
    y = np.asarray(y).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        return float("inf")
    if y.max() == 0:
        return float(np.nextafter(s.max(), np.inf))
    if y.min() == 1:
        return float(s.min())
    precision, recall, thresholds = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def _ranking(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    if y.min() == y.max():
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def score_metrics(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    categories: np.ndarray | None = None,
    unseen: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    """Judge one detector's test scores.

    Parameters
    ----------
    y : numpy.ndarray
        Test labels (0 benign, 1 attack).
    scores : numpy.ndarray
        Test scores, higher = more suspicious (logits for classifiers).
    threshold : float
        Chosen beforehand on validation rows; alerts are ``score >= threshold``. Used for F1 only.
    categories : numpy.ndarray or None, default=None
        Test category per row; with ``unseen``, adds separate figures for seen and unseen attack categories.
    unseen : set of str, default=frozenset()
        Attack categories absent from training.

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc`` (average precision), ``f1``, ``precision``, ``recall``, ``tpr_at_1pct_fpr``,
        ``fpr`` (at ``threshold``); with unseen categories also ``seen`` and ``unseen`` sub-dicts (``pr_auc``,
        ``tpr_at_1pct_fpr``, ``n``), each judged against all benign test rows.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = np.where(np.isnan(s), -np.inf, s)
    s = np.clip(s, -1e300, 1e300)
    roc, pr = _ranking(y, s)
    flagged = s >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    fn = int((~flagged & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    out: dict[str, Any] = {
        "roc_auc": roc,
        "pr_auc": pr,
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "fpr": fp / max(int((y == 0).sum()), 1),
        "tpr_at_1pct_fpr": tpr_at_fpr(y, s, 0.01),
    }
    if categories is not None and unseen:
        cats = np.asarray(categories)
        is_unseen = np.isin(cats, list(unseen)) & (y == 1)
        for name, mask in (("seen", (y == 1) & ~is_unseen), ("unseen", is_unseen)):
            keep = mask | (y == 0)
            sub_roc, sub_pr = _ranking(y[keep], s[keep])
            out[name] = {
                "n": int(mask.sum()),
                "pr_auc": sub_pr,
                "roc_auc": sub_roc,
                "tpr_at_1pct_fpr": tpr_at_fpr(y[keep], s[keep], 0.01) if mask.any() else math.nan,
            }
    return out
