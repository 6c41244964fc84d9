"""Helpers for the model tests: separable toy problems."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "features"))


@pytest.fixture(scope="session")
def separable() -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs in 8-D, 5% attacks, shifted along feature 3."""
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.random(n) < 0.05).astype(np.int64)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[y == 1, 3] += 4.0
    return X, y


@pytest.fixture(scope="session")
def hybrid_toy() -> Callable[[int], dict[str, Any]]:
    """A factory of hybrid members on a 6-D toy problem (attacks shifted along feature 0), seeded.

    Returns ``benign`` (900 rows), ``attacks`` (200), the labelled training rows ``X``/``y`` (600 benign, 150
    attacks), a classifier, a calibrated reconstruction scorer and a two-member federated isolation forest, all
    trained on the first rows; rows 600-750 of ``benign`` are left for calibration, 150- of ``attacks`` for judging.
    """
    from mamori.models import AttackClassifier, AutoencoderDetector, ReconstructionScorer
    from mamori.models.forest import FederatedIsolationForest

    def build(seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        benign = rng.normal(size=(900, 6)).astype(np.float32)
        attacks = rng.normal(size=(200, 6)).astype(np.float32)
        attacks[:, 0] += 4.0
        X = np.concatenate([benign[:600], attacks[:150]])
        y = np.array([0] * 600 + [1] * 150)
        ae = AutoencoderDetector(hidden_layers=(4, 2), epochs=3, seed=0).fit(benign[:600])
        return {
            "benign": benign,
            "attacks": attacks,
            "X": X,
            "y": y,
            "clf": AttackClassifier(hidden_layers=(8,), epochs=3, seed=0).fit(X, y),
            "scorer": ReconstructionScorer(ae, aggregate="top").fit(benign[600:750]),
            "forest": FederatedIsolationForest(n_estimators=20).fit([benign[:300], benign[300:600]]),
        }

    return build
