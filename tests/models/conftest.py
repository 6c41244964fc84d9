"""Helpers for the model tests: separable toy problems."""

from __future__ import annotations

import sys
from pathlib import Path

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
