"""The hybrid's k-means trust gate on the classifier in ``mamori bench``: defaults, the CLI switch and a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamori.bench import BenchConfig, load_generic, run_bench
from mamori_testing import FLOW_MAPPING, write_flow_table


def test_trust_gate_defaults_depend_on_the_dataset() -> None:
    assert BenchConfig().hybrid_trust_step("nsl-kdd") is True
    assert BenchConfig().hybrid_trust_step("csic") is False
    assert BenchConfig(hybrid_trust=False).hybrid_trust_step("nsl-kdd") is False
    assert BenchConfig(hybrid_trust=True).hybrid_trust_step("sms") is True


@pytest.mark.slow
def test_bench_gates_the_hybrid_classifier_by_a_federated_kmeans(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING + 'log1p = ["bytes_out"]\n', encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    config = BenchConfig(
        institutions=3, alpha=1.0, rounds=2, local_epochs=1, references=False, hybrid_forest=True, hybrid_trust=True
    )
    result = run_bench(ds, config)
    assert result["meta"]["hybrid"]["trust"] is True
    for key in ("hybrid/federated", "hybrid/centralized", "hybrid/local median"):
        assert 0.0 <= result["results"][key]["tpr_at_1pct_fpr"] <= 1.0, key
