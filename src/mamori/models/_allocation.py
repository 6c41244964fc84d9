"""Sharing a consortium-wide budget (trees, clusters) among members in proportion to their row counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mamori.errors import ConfigError


def allocate_by_rows(budget: int, counts: Sequence[float], owner: str) -> np.ndarray:
    """Units per member: ``budget`` shared in proportion to ``counts`` (largest remainder, >= 1 each).

    Every member gets at least one unit so that no member's data is left out of the consortium's model; the
    rest follow the row counts, which one secure sum of counts gives without revealing any member's own.

    Parameters
    ----------
    budget : int
        Units for the consortium (raised to the number of members if smaller).
    counts : sequence of float
        Each member's benign training rows.
    owner : str
        Named in the error (e.g. ``"FederatedIsolationForest.allocate"``).

    Returns
    -------
    numpy.ndarray
        Units per member (int); sums to ``max(budget, len(counts))``.
    """
    w = np.asarray(counts, dtype=np.float64)
    if w.size == 0 or not np.all(w > 0):
        raise ConfigError(f"{owner}: needs a positive row count per member.")
    total = max(int(budget), w.size)
    extra = total - w.size  # one unit each, the rest in proportion
    share = extra * w / w.sum()
    units = np.floor(share).astype(int)
    order = np.argsort(-(share - units), kind="stable")
    units[order[: extra - int(units.sum())]] += 1
    return units + 1
