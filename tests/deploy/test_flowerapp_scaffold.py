"""SCAFFOLD and a server optimizer in the deployment's ServerApp/ClientApp (consortium.toml's client_algorithm,
server_optimizer), plain and under SecAgg+, through the in-process grid: the members keep their control variate in
their Flower run state between rounds, and the coordinator's control variate is the members' weighted mean."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID

from mamori.deploy import flowerapp
from mamori.deploy.flowerapp import client_app, secure_client_app, server_app
from mamori.federation import EstimatorTrainer
from mamori.federation.inprocess import InProcessGrid
from mamori.store import AuditLog, ModelRegistry, open_store
from mamori_testing import flower_task_identity, write_simulated_members

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def member_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_simulated_members(tmp_path_factory.mktemp("members"))


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    with flower_task_identity(SUPERLINK_NODE_ID):
        yield


def _run(paths: list[str], store_url: str, rounds: int, tmp: Path, *, secure: bool, run_id: int = 1,
         **extra: object) -> InProcessGrid:
    node_ids = [11 + i for i in range(len(paths))]
    grid = InProcessGrid(secure_client_app if secure else client_app, node_ids, run_id=run_id, default_timeout=60)
    for i, node_id in enumerate(node_ids):
        grid._contexts[node_id].node_config.update(
            {"data-path": paths[i], "node-name": f"bank-{i}", "model-dir": str(tmp / f"model-{i}")}
        )
    run_config = {"num-rounds": rounds, "store-url": store_url, "hidden": "8", "min-train-nodes": 2,
                  "min-available-nodes": 2, "round-timeout": 60.0, "secure-aggregation": secure,
                  "fraction-evaluate": 0.0, "min-evaluate-nodes": 0, "client-algorithm": "scaffold",
                  "server-optimizer": "fedavgm", "server-momentum": 0.5, **extra}
    context = Context(run_id=run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(),
                      run_config=run_config)
    try:
        server_app(grid, context)
    finally:
        grid.close()
    return grid


class _Seen:
    """What each member's EstimatorTrainer got in fit_scaffold: the server's c and its own c_i, before and after."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = EstimatorTrainer.fit_scaffold
        rows = self.rows

        def fit_scaffold(trainer: EstimatorTrainer, arrays: list[np.ndarray], control: list[np.ndarray],
                         config: Mapping[str, Any]) -> Any:
            before = [c.copy() for c in getattr(trainer, "control_", None) or []]
            out = original(trainer, arrays, control, config)
            rows.append({"round": int(config["server_round"]), "rows": len(trainer.y_train),
                         "control": [c.copy() for c in control], "before": before,
                         "after": [c.copy() for c in trainer.control_], "delta": [d.copy() for d in out[1]]})
            return out

        monkeypatch.setattr(EstimatorTrainer, "fit_scaffold", fit_scaffold)

    def round(self, r: int) -> list[dict[str, Any]]:
        return sorted((row for row in self.rows if row["round"] == r), key=lambda row: row["rows"])


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secagg"])
def test_scaffold_with_server_momentum_keeps_control_variates_across_rounds(
    member_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secure: bool
) -> None:
    # Prepare
    seen = _Seen()
    seen.install(monkeypatch)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    paths = [str(p) for p in member_files]
    # Execute: three rounds, then a resumed run that adds a fourth
    grid = _run(paths, url, 3, tmp_path, secure=secure)
    first_run = list(seen.rows)
    seen.rows.clear()
    _run(paths, url, 4, tmp_path, secure=secure, run_id=2)
    resumed = list(seen.rows)
    seen.rows[:] = first_run
    # Assert: round 1 starts from c = 0 and c_i = 0
    first = seen.round(1)
    assert len(first) == 2 and all(not row["before"] for row in first)
    assert all(np.all(c == 0) for row in first for c in row["control"])
    for r in (2, 3):
        rows, previous = seen.round(r), seen.round(r - 1)
        # each member's c_i survived from its previous round in the node's run state...
        for row, prev in zip(rows, previous, strict=True):
            for a, b in zip(row["before"], prev["after"], strict=True):
                np.testing.assert_array_equal(a, b)
        # ...and every member received the server's c = the example-weighted mean of the members' c_i (both
        # sampled every round, so the SCAFFOLD step adds the full weighted mean of the deltas); under SecAgg+ up
        # to its quantization (first round's bound here ~2e-5)
        share = np.array([row["rows"] for row in previous], dtype=np.float64)
        share /= share.sum()
        expected = [sum(w * row["after"][i] for w, row in zip(share, previous, strict=True))
                    for i in range(len(previous[0]["after"]))]
        for row in rows:
            for got, want in zip(row["control"], expected, strict=True):
                np.testing.assert_allclose(got, want, atol=1e-4 if secure else 1e-6)
        assert any(np.abs(c).max() > 1e-3 for c in rows[0]["control"])
    # the member state is what the node keeps for the run
    kept = grid._contexts[11].state.array_records[flowerapp._CONTROL_STATE_KEY].to_numpy_ndarrays()
    assert any(np.abs(c).max() > 0 for c in kept)
    # a resumed run is a new Flower run: c and every c_i start again from zero (documented)
    assert len(resumed) == 2 and all(not row["before"] for row in resumed)
    assert all(np.all(c == 0) for row in resumed for c in row["control"])
    # the node's own diagnostics say which round's c_i each step started from (0: zeros)
    timings = [json.loads(line) for line in (tmp_path / "model-0" / "timings.jsonl").read_text().splitlines()]
    assert [(t["round"], t["scaffold_control_from_round"]) for t in timings if t["phase"] == "train"] == [
        (1, 0), (2, 1), (3, 2), (4, 0)]
    store = open_store(url)
    starts = [e.details for e in AuditLog(store).entries() if e.action == "federation.run_start"]
    assert [(s["client_algorithm"], s["server_optimizer"], s["secure_aggregation"]) for s in starts] == [
        ("scaffold", "fedavgm", secure)] * 2
    assert [r.version for r in ModelRegistry(store).list("consortium-attack-classifier")] == [0, 1, 2, 3, 4]
    store.close()
