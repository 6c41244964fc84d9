"""The NSL-KDD validation script's hard attack variants and the fusion ranking's rules (benchmarks/)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import numpy as np

from mamori_testing import REPO_ROOT


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows() -> tuple[np.ndarray, np.ndarray]:
    """Normal rows near 0; attack type ``a`` in two blobs (a big one far away, a small one near normal); ``b``."""
    rng = np.random.default_rng(0)
    X = np.r_[
        rng.normal(0, 0.1, (200, 2)),
        rng.normal(10, 0.1, (150, 2)),
        rng.normal(1, 0.1, (50, 2)),
        rng.normal(-5, 0.1, (8, 2)),
    ]
    cat = np.array(["normal"] * 200 + ["a"] * 200 + ["b"] * 8)
    return X, cat


def test_hard_variant_is_one_cluster_of_each_seen_type() -> None:
    v = _script("nsl_kdd_validation")
    X, cat = _rows()
    far, dropped = v._hard_variants(X, cat, held=(), seed=0, k=2)
    # Type a: the small blob (the big one holds more than half the type); b is too small to cluster.
    assert far.sum() == 50 and np.all(cat[far] == "a") and not dropped.any()
    near, _ = v._hard_variants(X, cat, held=(), seed=0, k=2, pick="near-normal")
    assert np.array_equal(near, far)  # the small blob is also the one nearest the normal rows
    held, _ = v._hard_variants(X, cat, held=("a",), seed=0, k=2)
    assert not held.any()  # a held-out type has no variant: all of it is held out already


def test_hard_variant_cap_leaves_the_rest_out() -> None:
    v = _script("nsl_kdd_validation")
    X, cat = _rows()
    var, dropped = v._hard_variants(X, cat, held=(), seed=0, k=2, cap=20)
    assert var.sum() == 20 and dropped.sum() == 30 and not (var & dropped).any()
    train, _, _, ev_att, _ = v._fold_rows(cat, (), np.random.default_rng(0), 10_000, variants=(var, dropped))
    assert not np.isin(np.flatnonzero(var | dropped), train).any()  # never trained on
    assert np.isin(np.flatnonzero(var), ev_att).all() and not np.isin(np.flatnonzero(dropped), ev_att).any()


def test_fusion_rules_damp_and_cap_the_classifier() -> None:
    r = _script("nsl_kdd_fusion_rank")
    assert np.allclose(r._damp(np.array([0.5, 2.0, 6.0]), 2.0, 0.25), [0.5, 2.0, 3.0])
    m = {"clf": np.array([5.0]), "ae": np.array([4.0]), "fif": np.array([1.0]), "iso": np.array([0.0])}
    rules = r.rules()
    assert rules["clf + fIF + min(AE, 2) (shipped)"](m)[0] == 8.0
    assert rules["min(clf, 2) + fIF + min(AE, 2)"](m)[0] == 5.0
