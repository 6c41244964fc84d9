"""The hybrid's federated isolation forest and autoencoder surprise cap in ``mamori bench``: defaults and a run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from mamori.bench import BenchConfig, load_generic, run_bench
from mamori_testing import FLOW_MAPPING, write_flow_table

_MAPPING = FLOW_MAPPING + 'log1p = ["bytes_out"]\n'


def _flows(folder: Path, n: int = 600) -> Path:
    """Benign flows and two attack types (no text column); returns the mapping's path."""
    write_flow_table(folder / "flows.csv", n=n, url=False)
    (folder / "bench.toml").write_text(_MAPPING, encoding="utf-8")
    return folder / "bench.toml"


def test_hybrid_defaults_depend_on_the_dataset() -> None:
    default = BenchConfig()
    assert default.hybrid_step("nsl-kdd") == (True, 2.0)
    assert default.hybrid_step("csic") == (False, None)
    assert BenchConfig(hybrid_forest=False, ae_surprise_cap=math.inf).hybrid_step("nsl-kdd") == (False, None)
    assert BenchConfig(hybrid_forest=True, ae_surprise_cap=3.0).hybrid_step("sms") == (True, 3.0)
    with pytest.raises(ValidationError):
        BenchConfig(ae_surprise_cap=0.0)


@pytest.mark.slow
def test_bench_reports_the_federated_forest_and_its_hybrid(tmp_path: Path) -> None:
    ds = load_generic(_flows(tmp_path), split_seed=0)
    config = BenchConfig(
        institutions=3, alpha=1.0, rounds=2, local_epochs=1, references=False, hybrid_forest=True, ae_surprise_cap=2.0
    )
    result = run_bench(ds, config)
    r = result["results"]
    for key in ("isolation_forest/federated", "hybrid/federated", "hybrid/centralized", "hybrid/local median"):
        assert 0.0 <= r[key]["tpr_at_1pct_fpr"] <= 1.0, key
    assert r["isolation_forest/federated"]["roc_auc"] > 0.5  # label-free: better than chance
    forest = result["federation"]["isolation_forest"]
    assert forest["members"] == 3 and sum(forest["trees"]) == 200
    assert result["meta"]["hybrid"] == {"fusion": "sum", "forest": True, "ae_surprise_cap": 2.0, "trust": False}
