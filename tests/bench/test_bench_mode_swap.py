"""The classifiers' benign-mode augmentation in ``mamori bench`` (``BenchConfig.clf_mode_swap``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mamori.bench import BenchConfig, load_generic, run_bench
from mamori.bench.augment import mode_swap_rows
from mamori.errors import ConfigError
from mamori_testing import FLOW_MAPPING

_NAMES = ("bytes", "service=http", "service=ftp", "service=smtp", "flag=SF", "flag=REJ", "proto=tcp")


def _benign(n: int = 50) -> np.ndarray:
    X = np.zeros((n, len(_NAMES)), dtype=np.float32)
    X[:, 0] = np.arange(n)
    X[:, 1] = 1.0  # every benign row is http / SF
    X[:, 4] = 1.0
    X[:, 6] = 1.0
    return X


def test_mode_swap_redraws_only_the_named_groups() -> None:
    X = _benign()
    out = mode_swap_rows(X, _NAMES, ("service", "flag"), 2.0, np.random.default_rng(0))
    assert out.shape == (100, len(_NAMES)) and out.dtype == X.dtype
    assert np.all(out[:, 1:4].sum(axis=1) == 1) and np.all(out[:, 4:6].sum(axis=1) == 1)  # still one-hot
    assert out[:, 2:4].sum() > 0 and out[:, 5].sum() > 0  # other values drawn
    assert np.all(out[:, 6] == 1) and np.isin(out[:, 0], X[:, 0]).all()  # other columns copied as they were
    again = mode_swap_rows(X, _NAMES, ("service", "flag"), 2.0, np.random.default_rng(0))
    assert np.array_equal(out, again)  # seeded
    assert len(mode_swap_rows(X, _NAMES, ("service",), 0.0, np.random.default_rng(0))) == 0
    assert len(mode_swap_rows(X[:0], _NAMES, ("service",), 1.0, np.random.default_rng(0))) == 0
    with pytest.raises(ConfigError):
        mode_swap_rows(X, _NAMES, ("proto",), 1.0, np.random.default_rng(0))  # a single column is no group


def test_mode_swap_defaults_depend_on_the_dataset() -> None:
    assert BenchConfig().classifier_augment("nsl-kdd", _NAMES) == (0.3, ("service", "flag"))
    assert BenchConfig().classifier_augment("csic", _NAMES) == (0.0, ())
    assert BenchConfig(clf_mode_swap=0.0).classifier_augment("nsl-kdd", _NAMES) == (0.0, ())
    # An explicit share on an untuned dataset redraws every one-hot group of two or more columns.
    assert BenchConfig(clf_mode_swap=0.5).classifier_augment("flows", _NAMES) == (0.5, ("flag", "service"))
    with pytest.raises(ValueError):
        BenchConfig(clf_mode_swap=0.5).classifier_augment("flows", ("bytes", "proto=tcp"))
    with pytest.raises(ValidationError):
        BenchConfig(clf_mode_swap=-0.1)


_MAPPING = FLOW_MAPPING


@pytest.mark.slow
def test_bench_trains_the_classifiers_on_the_copies(tmp_path: Path) -> None:
    import polars as pl

    rng = np.random.default_rng(0)
    n = 400
    kind = rng.choice(["benign", "scan"], size=n, p=[0.7, 0.3])
    pl.DataFrame(
        {
            "distinct_ports": np.where(kind == "scan", rng.integers(1, 60, n), rng.integers(1, 4, n)),
            "proto": rng.choice(["tcp", "udp", "icmp"], n),
            "verdict": np.where(kind == "benign", "ok", "bad"),
            "attack_type": kind,
        }
    ).write_csv(tmp_path / "flows.csv")
    (tmp_path / "bench.toml").write_text(_MAPPING, encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    config = BenchConfig(
        institutions=3, alpha=1.0, rounds=2, local_epochs=1, references=False, autoencoder=False, clf_mode_swap=0.5
    )
    result = run_bench(ds, config)
    swap = result["meta"]["classifier_mode_swap"]
    assert swap["share"] == 0.5 and swap["groups"] == ["proto"] and len(swap["rows"]) == 3 and sum(swap["rows"]) > 0
    for key in ("classifier/federated", "classifier/centralized", "classifier/local median"):
        assert 0.0 <= result["results"][key]["tpr_at_1pct_fpr"] <= 1.0, key
