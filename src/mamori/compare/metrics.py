"""Scoring a detector the way a bank's SOC would judge it: PR-AUC, and what a calibrated threshold catches."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_curve

__all__ = ["detection_metrics", "family_metrics", "tpr_at_fpr"]


def tpr_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float = 0.01) -> float:
    """True-positive rate at the largest operating point whose false-positive rate is at most ``fpr``."""
    if y.min() == y.max():
        return float("nan")
    fprs, tprs, _ = roc_curve(y, scores)
    ok = fprs <= fpr
    return float(tprs[ok].max()) if ok.any() else 0.0


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
        ``pr_auc``, ``recall``, ``fpr``, ``tpr_at_1pct_fpr``, ``positives``, ``negatives``. PR-AUC is NaN when
        the test set has no attack events.
    """
    flagged = scores > threshold
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    pr_auc = float(average_precision_score(y, scores)) if 0 < n_pos < len(y) else float("nan")
    return {
        "pr_auc": pr_auc,
        "recall": float(flagged[pos].mean()) if n_pos else float("nan"),
        "fpr": float(flagged[~pos].mean()) if n_neg else float("nan"),
        "tpr_at_1pct_fpr": tpr_at_fpr(y, scores, 0.01),
        "positives": n_pos,
        "negatives": n_neg,
    }


def family_metrics(
    y: np.ndarray, families: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, dict[str, float]]:
    """Per attack family: events, recall at ``threshold`` and PR-AUC of that family against all benign events."""
    benign = y == 0
    out: dict[str, dict[str, float]] = {}
    for family in sorted(set(families[y == 1].tolist())):
        rows = (families == family) & (y == 1)
        keep = rows | benign
        sub_y = rows[keep].astype(np.int8)
        out[family] = {
            "n": int(rows.sum()),
            "flagged": int((scores[rows] > threshold).sum()),
            "recall": float((scores[rows] > threshold).mean()),
            "pr_auc": float(average_precision_score(sub_y, scores[keep])) if benign.any() else float("nan"),
        }
    return out
