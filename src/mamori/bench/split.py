"""The seeded non-IID split of a training pool among simulated institutions (Dirichlet over categories)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mamori.errors import ConfigError

__all__ = ["dirichlet_split", "split_skew"]

logger = logging.getLogger(__name__)


def dirichlet_split(
    categories: np.ndarray,
    n_institutions: int,
    alpha: float,
    seed: int,
    *,
    min_rows: int = 20,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Share rows out among institutions with a Dirichlet(alpha) draw per category.

    For every category (an attack name or type, the benign category, or the label itself for binary
    datasets), shares ``p ~ Dirichlet(alpha, ..., alpha)`` over the institutions are drawn and the category's
    rows, shuffled, are cut in those proportions. Small ``alpha`` (e.g. 0.3) gives each institution a few
    dominant categories — some may see no benign traffic or no attacks at all — large ``alpha`` tends to IID.

    Parameters
    ----------
    categories : numpy.ndarray
        Shape ``(n,)``: the category of each training row.
    n_institutions : int
        Number of institutions ``K`` (>= 2).
    alpha : float
        Dirichlet concentration (> 0).
    seed : int
        Seed of the draws and shuffles; the same inputs give the same split.
    min_rows : int, default=20
        Every institution gets at least this many rows: a draw giving one fewer is redrawn (the next draw of
        the same seeded generator), at most ``max_tries`` times.
    max_tries : int, default=100
        Draws tried before giving up.

    Returns
    -------
    list of numpy.ndarray
        ``K`` sorted index arrays, disjoint, covering every row.

    Raises
    ------
    ConfigError
        If the parameters are invalid or no draw satisfies ``min_rows``.
    """
    if n_institutions < 2:
        raise ConfigError(f"dirichlet_split: n_institutions must be >= 2; got {n_institutions}.")
    if not alpha > 0:
        raise ConfigError(f"dirichlet_split: alpha must be > 0; got {alpha}.")
    cats = np.asarray(categories)
    if cats.shape[0] < n_institutions * min_rows:
        raise ConfigError(
            f"dirichlet_split: {cats.shape[0]} rows cannot give {n_institutions} institutions {min_rows} rows each."
        )
    rng = np.random.default_rng(seed)
    values = np.unique(cats)
    for attempt in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_institutions)]
        for value in values:
            idx = np.flatnonzero(cats == value)
            rng.shuffle(idx)
            shares = rng.dirichlet(np.full(n_institutions, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        sizes = [len(p) for p in out]
        if min(sizes) >= min_rows:
            logger.info("dirichlet_split: K=%d alpha=%s seed=%d accepted draw %d", n_institutions, alpha, seed, attempt)
            return out
    raise ConfigError(
        f"dirichlet_split: no draw in {max_tries} gave every institution {min_rows} rows (alpha={alpha}, "
        f"K={n_institutions}); raise alpha or lower the number of institutions."
    )


def split_skew(
    parts: list[np.ndarray], categories: np.ndarray, labels: np.ndarray, names: list[str] | None = None
) -> dict[str, Any]:
    """Describe how skewed a split is.

    Parameters
    ----------
    parts : list of numpy.ndarray
        Index arrays from :func:`dirichlet_split`.
    categories : numpy.ndarray
        Category per row.
    labels : numpy.ndarray
        0/1 label per row.
    names : list of str or None, default=None
        Institution names; default ``inst-00``, ``inst-01``...

    Returns
    -------
    dict
        ``institutions``: per institution rows, attack share, categories present and its dominant category;
        ``mean_tv_distance``: mean total-variation distance between an institution's category distribution and
        the pool's (0 for IID, towards 1 for disjoint); ``attack_only`` and ``benign_only``: how many
        institutions hold a single class.
    """
    cats = np.asarray(categories)
    values, pooled_counts = np.unique(cats, return_counts=True)
    pooled = pooled_counts / pooled_counts.sum()
    names = names or [f"inst-{k:02d}" for k in range(len(parts))]
    rows, tvs = [], []
    for name, idx in zip(names, parts, strict=True):
        counts = np.array([(cats[idx] == v).sum() for v in values], dtype=np.float64)
        dist = counts / max(counts.sum(), 1.0)
        tv = 0.5 * float(np.abs(dist - pooled).sum())
        tvs.append(tv)
        y = labels[idx]
        rows.append(
            {
                "institution": name,
                "rows": int(len(idx)),
                "attacks": int(y.sum()),
                "attack_share": float(y.mean()) if len(y) else float("nan"),
                "categories": int((counts > 0).sum()),
                "dominant": str(values[int(np.argmax(counts))]),
                "dominant_share": float(dist.max()),
                "tv_distance": tv,
            }
        )
    return {
        "institutions": rows,
        "mean_tv_distance": float(np.mean(tvs)),
        "attack_only": int(sum(r["attacks"] == r["rows"] for r in rows)),
        "benign_only": int(sum(r["attacks"] == 0 for r in rows)),
    }
