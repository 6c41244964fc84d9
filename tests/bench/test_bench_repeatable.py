"""``mamori bench`` is repeatable from its seed: two runs in one process give the same results JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mamori.bench import BenchConfig, load_generic, run_bench
from mamori_testing import FLOW_MAPPING, write_flow_table


def _without_timings(value: Any) -> Any:
    """``value`` with every ``seconds`` entry dropped (wall-clock times are the only figures allowed to differ)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_two_bench_runs_with_one_seed_give_identical_results(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    # Every trained part on: local-only, federated classifier and autoencoder (through Flower), forest, trust gate,
    # centralized models and references.
    config = BenchConfig(
        institutions=3, alpha=1.0, seed=3, rounds=2, local_epochs=1, hybrid_forest=True, hybrid_trust=True
    )
    first, second = (json.dumps(_without_timings(run_bench(ds, config)), sort_keys=True) for _ in range(2))
    assert first == second
    meta = json.loads(first)["meta"]
    # What the figures depend on besides the code and the seed is recorded with them.
    assert {"cpu_model", "torch_cpu_capability", "blas", "env"} <= set(meta["hardware"])
    assert set(meta["source"]) == {"commit", "modified"}
