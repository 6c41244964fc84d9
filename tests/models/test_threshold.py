from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mamori.errors import ConfigError, NotFittedError
from mamori.models import ThresholdCalibrator, calibrate_threshold


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_held_out_fpr_stays_under_target(seed: int) -> None:
    # Prepare: calibrate on one sample of benign logits, check on another
    rng = np.random.default_rng(seed)
    calibration = rng.standard_t(df=3, size=20_000)
    held_out = rng.standard_t(df=3, size=200_000)
    # Execute
    threshold = calibrate_threshold(calibration, target_fpr=0.005, confidence=0.99)
    # Assert
    assert (held_out > threshold).mean() <= 0.005


def test_confidence_is_the_share_of_calibrations_that_meet_the_target() -> None:
    # Prepare: benign scores ~ N(0, 1), so the true FPR of a threshold t is norm.sf(t)
    rng = np.random.default_rng(0)
    trials = 200
    # Execute
    true_fpr = np.array([norm.sf(calibrate_threshold(rng.normal(size=5000), 0.005)) for _ in range(trials)])
    # Assert: default confidence 0.9 -> about 10% of calibrations overshoot, and never by much
    assert (true_fpr > 0.005).mean() <= 0.16
    assert true_fpr.max() < 0.009


def test_confidence_half_is_close_to_the_quantile() -> None:
    scores = np.random.default_rng(0).normal(size=100_000)
    t = calibrate_threshold(scores, 0.01, confidence=0.5)
    assert abs((scores > t).mean() - 0.01) < 0.001


def test_small_samples_fall_back_to_the_maximum() -> None:
    scores = np.arange(50, dtype=float)
    assert calibrate_threshold(scores, 0.005) == 49.0


def test_ties_never_raise_the_false_positive_rate() -> None:
    scores = np.r_[np.zeros(10_000), np.ones(30)]
    t = calibrate_threshold(scores, 0.001)
    assert (scores > t).mean() <= 0.001


def test_calibrator_estimator() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=5000)
    y = np.zeros(5000)
    y[:10] = 1
    cal = ThresholdCalibrator(target_fpr=0.01).fit(scores, y)
    assert cal.n_benign_ == 4990
    assert cal.predict(scores).mean() < 0.02
    with pytest.raises(NotFittedError):
        ThresholdCalibrator().predict(scores)
    with pytest.raises(ConfigError):
        calibrate_threshold(scores, target_fpr=1.5)
