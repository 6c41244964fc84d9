"""Centralized scikit-learn references: HistGradientBoosting (supervised) and IsolationForest (normal rows only)."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.linear_model import LogisticRegression

__all__ = ["fit_hist_gradient_boosting", "fit_isolation_forest", "fit_logistic_regression"]

logger = logging.getLogger(__name__)


def _sample(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def fit_hist_gradient_boosting(
    X: np.ndarray, y: np.ndarray, *, seed: int, max_rows: int = 200_000
) -> HistGradientBoostingClassifier:
    """Fit scikit-learn's HistGradientBoostingClassifier on pooled rows (defaults, fixed seed).

    Parameters
    ----------
    X : numpy.ndarray
        Pooled training rows (raw features: trees need no scaling).
    y : numpy.ndarray
        0/1 labels.
    seed : int
        ``random_state`` and the seed of the row sample.
    max_rows : int, default=200000
        At most this many rows (a seeded sample) are used.

    Returns
    -------
    sklearn.ensemble.HistGradientBoostingClassifier
        Fitted; score with ``decision_function`` (log-odds).
    """
    idx = _sample(len(X), max_rows, seed)
    model = HistGradientBoostingClassifier(random_state=seed)
    return model.fit(X[idx], y[idx])


def fit_isolation_forest(X_benign: np.ndarray, *, seed: int, max_rows: int = 200_000) -> IsolationForest:
    """Fit scikit-learn's IsolationForest on pooled normal rows only (label-free at scoring time).

    Parameters
    ----------
    X_benign : numpy.ndarray
        Pooled benign training rows.
    seed : int
        ``random_state`` and the seed of the row sample.
    max_rows : int, default=200000
        At most this many rows.

    Returns
    -------
    sklearn.ensemble.IsolationForest
        Fitted with 200 trees; the anomaly score is ``-score_samples(X)``.
    """
    idx = _sample(len(X_benign), max_rows, seed)
    model = IsolationForest(n_estimators=200, random_state=seed)
    return model.fit(X_benign[idx])


def fit_logistic_regression(X: np.ndarray, y: np.ndarray, *, seed: int) -> LogisticRegression:
    """Fit a balanced L2 logistic regression: the reference for wide text vectors (where boosting is too slow).

    Parameters
    ----------
    X : numpy.ndarray
        Pooled training rows.
    y : numpy.ndarray
        0/1 labels.
    seed : int
        ``random_state``.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        Fitted (``C=10``, ``class_weight="balanced"``); score with ``decision_function``.
    """
    return LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000, random_state=seed).fit(X, y)
