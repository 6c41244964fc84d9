"""The Dirichlet non-IID split: seeded, disjoint, complete, skewed as asked."""

from __future__ import annotations

import numpy as np
import pytest

from mamori.bench import dirichlet_split, split_skew
from mamori.errors import ConfigError


def _categories(n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.choice(["normal", "dos", "probe", "r2l", "u2r"], size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])


def test_split_is_seeded_disjoint_and_complete() -> None:
    cats = _categories()
    a = dirichlet_split(cats, 10, 0.3, seed=0)
    b = dirichlet_split(cats, 10, 0.3, seed=0)
    c = dirichlet_split(cats, 10, 0.3, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    joined = np.concatenate(a)
    assert len(joined) == len(cats) and len(np.unique(joined)) == len(cats)
    assert min(len(p) for p in a) >= 20


def test_small_alpha_is_more_skewed_than_large_alpha() -> None:
    cats = _categories()
    y = (cats != "normal").astype(int)
    skewed = split_skew(dirichlet_split(cats, 10, 0.1, seed=0), cats, y)
    iid = split_skew(dirichlet_split(cats, 10, 100.0, seed=0), cats, y)
    assert skewed["mean_tv_distance"] > 0.3 > 0.1 > iid["mean_tv_distance"]
    assert len(skewed["institutions"]) == 10
    assert {"rows", "attack_share", "dominant", "tv_distance"} <= set(skewed["institutions"][0])


def test_split_rejects_bad_parameters() -> None:
    cats = _categories(100)
    with pytest.raises(ConfigError, match="n_institutions"):
        dirichlet_split(cats, 1, 0.3, seed=0)
    with pytest.raises(ConfigError, match="alpha"):
        dirichlet_split(cats, 3, 0.0, seed=0)
    with pytest.raises(ConfigError, match="rows"):
        dirichlet_split(cats, 10, 0.3, seed=0, min_rows=20)
