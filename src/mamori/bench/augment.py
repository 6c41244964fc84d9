"""Benign-mode augmentation of a classifier's training rows (``BenchConfig.clf_mode_swap``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mamori.errors import ConfigError

__all__ = ["mode_swap_rows"]


def mode_swap_rows(
    X_benign: np.ndarray,
    feature_names: Sequence[str],
    groups: Sequence[str],
    share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Copies of benign rows with each one-hot group set to a uniformly random value.

    Parameters
    ----------
    X_benign : numpy.ndarray
        Shape ``(n, n_features)``: rows a member believes benign, in raw (unstandardised) units.
    feature_names : sequence of str
        Column names; a one-hot group ``g`` is every column named ``"g=<value>"``.
    groups : sequence of str
        The one-hot groups to redraw (NSL-KDD: ``("service", "flag")``).
    share : float
        Copies to make, as a share of ``len(X_benign)`` (drawn with replacement).
    rng : numpy.random.Generator
        Seeded source of the copies and values.

    Returns
    -------
    numpy.ndarray
        Shape ``(round(share * n), n_features)``, the dtype of ``X_benign``. Trained on as benign, these teach a
        classifier that normal traffic may come with any service or flag, so benign rows of a mode it never saw
        (a service rare among its normal rows) raise fewer alarms (docs/benchmarks.md, NSL-KDD validation).

    Raises
    ------
    ConfigError
        If a group has fewer than two columns.
    """
    n = int(round(share * len(X_benign)))
    if n == 0 or len(X_benign) == 0:
        return X_benign[:0].copy()
    out = X_benign[rng.integers(0, len(X_benign), size=n)].copy()
    rows = np.arange(n)
    for g in groups:
        cols = np.array([j for j, name in enumerate(feature_names) if name.startswith(f"{g}=")])
        if len(cols) < 2:
            raise ConfigError(f"mode_swap_rows: one-hot group {g!r} has {len(cols)} columns; need at least 2.")
        out[:, cols] = 0
        out[rows, rng.choice(cols, size=n)] = 1
    return out
