"""Per-bank alert thresholds calibrated to a target false-positive rate on benign scores."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.stats import beta

from mamori.errors import ConfigError, NotFittedError, SchemaError

__all__ = ["calibrate_threshold", "ThresholdCalibrator"]

logger = logging.getLogger(__name__)


def calibrate_threshold(benign_scores: Any, target_fpr: float = 0.005, confidence: float = 0.9) -> float:
    """Return the threshold ``t`` (alert when ``score > t``) whose false-positive rate stays at most ``target_fpr``.

    Parameters
    ----------
    benign_scores : array-like
        Scores (logits or anomaly scores; higher = more suspicious) of events believed benign, held out from
        training.
    target_fpr : float, default=0.005
        The false-positive rate the bank accepts (0.5%).
    confidence : float, default=0.9
        Probability that the *true* false-positive rate of the threshold is at most ``target_fpr``. With
        ``n`` benign scores, allowing ``m`` of them above ``t`` gives a true rate distributed as
        ``Beta(m + 1, n - m)``; the largest ``m`` whose Beta CDF at ``target_fpr`` reaches ``confidence`` is
        chosen. ``confidence=0.5`` is close to the plain empirical quantile.

    Returns
    -------
    float
        The threshold: the ``(m + 1)``-th largest benign score, or the largest score (no benign alert) when the
        sample is too small to reach the confidence.

    Raises
    ------
    ConfigError
        If ``target_fpr`` or ``confidence`` are outside ``(0, 1)``.
    SchemaError
        If there are no finite scores.
    """
    if not 0.0 < target_fpr < 1.0:
        raise ConfigError(f"calibrate_threshold: target_fpr must be in (0, 1); got {target_fpr}.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"calibrate_threshold: confidence must be in (0, 1); got {confidence}.")
    scores = np.asarray(benign_scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    n = scores.size
    if n == 0:
        raise SchemaError("calibrate_threshold: benign_scores holds no finite score; score held-out benign events.")
    desc = np.sort(scores)[::-1]
    upper = int(np.floor(target_fpr * n))
    m_values = np.arange(0, upper + 1)
    ok = beta.cdf(target_fpr, m_values + 1, n - m_values) >= confidence
    if not ok.any():
        logger.warning(
            "calibrate_threshold: %d benign scores are too few to guarantee FPR <= %.4f with confidence %.2f; "
            "using the largest benign score",
            n,
            target_fpr,
            confidence,
        )
        return float(desc[0])
    m = int(m_values[ok].max())
    return float(desc[m])


class ThresholdCalibrator:
    """Estimator wrapper of :func:`calibrate_threshold`.

    Parameters
    ----------
    target_fpr : float, default=0.005
        Target false-positive rate.
    confidence : float, default=0.9
        See :func:`calibrate_threshold`.

    Attributes
    ----------
    threshold_ : float
        Alert when ``score > threshold_``.
    n_benign_ : int
        Number of benign scores calibrated on.
    """

    def __init__(self, target_fpr: float = 0.005, confidence: float = 0.9) -> None:
        self.target_fpr = target_fpr
        self.confidence = confidence

    def fit(self, benign_scores: Any, y: Any = None) -> ThresholdCalibrator:
        """Calibrate on benign scores (or on all scores with ``y``, using only ``y == 0``).

        Parameters
        ----------
        benign_scores : array-like
            Scores.
        y : array-like, optional
            Labels; when given only rows with ``y == 0`` are used.

        Returns
        -------
        ThresholdCalibrator
            ``self``.
        """
        scores = np.asarray(benign_scores, dtype=np.float64).ravel()
        if y is not None:
            scores = scores[np.asarray(y).ravel() == 0]
        self.threshold_ = calibrate_threshold(scores, self.target_fpr, self.confidence)
        self.n_benign_ = int(scores.size)
        return self

    def predict(self, scores: Any) -> np.ndarray:
        """Return 1 where ``score > threshold_``.

        Parameters
        ----------
        scores : array-like
            Scores.

        Returns
        -------
        numpy.ndarray
            int64 alerts.
        """
        if not hasattr(self, "threshold_"):
            raise NotFittedError("ThresholdCalibrator.predict: call fit(benign_scores) first.")
        return (np.asarray(scores, dtype=np.float64) > self.threshold_).astype(np.int64)
