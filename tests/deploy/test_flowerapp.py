"""mamori's deployment ServerApp/ClientApp driven through the in-process grid (fast, no sockets)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID

from mamori.deploy.flowerapp import _CONTROL_STATE_KEY, client_app, secure_client_app, secure_dp_client_app, server_app
from mamori.errors import FederationError
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


def _run(paths: list[str], store_url: str, rounds: int, tmp: Path, secure: bool = False, run_id: int = 1,
         **extra: object) -> InProcessGrid:
    node_ids = [11 + i for i in range(len(paths))]
    app = client_app
    if secure:
        app = secure_dp_client_app if float(extra.get("member-dp-epsilon", 0.0)) > 0 else secure_client_app  # type: ignore[arg-type]
    grid = InProcessGrid(app, node_ids, run_id=run_id, default_timeout=60)
    for i, node_id in enumerate(node_ids):
        grid._contexts[node_id].node_config.update(  # what --node-config gives a SuperNode
            {"data-path": paths[i], "node-name": f"bank-{i}", "model-dir": str(tmp / f"model-{i}")}
        )
    run_config = {"num-rounds": rounds, "store-url": store_url, "hidden": "8", "min-train-nodes": 2,
                  "min-available-nodes": 2, "round-timeout": 60.0, "secure-aggregation": secure, **extra}
    context = Context(run_id=run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(),
                      run_config=run_config)
    try:
        server_app(grid, context)
    finally:
        grid.close()
    return grid  # its members' contexts (node config, run state) stay readable


def test_resume_from_the_last_checkpoint(member_files: list[Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    paths = [str(p) for p in member_files]
    _run(paths, url, 1, tmp_path)
    _run(paths, url, 2, tmp_path)  # "restarted coordinator": resumes after round 1
    _run(paths, url, 2, tmp_path)  # nothing left to do
    store = open_store(url)
    records = ModelRegistry(store).list("consortium-attack-classifier")
    assert [r.version for r in records] == [0, 1, 2]
    # the resumed run keeps the standardiser round 1 was trained with (one stats round in all)
    assert records[1].metadata["standardizer"] and records[2].metadata["standardizer"] == records[1].metadata[
        "standardizer"]
    assert [e.action for e in AuditLog(store).entries()].count("federation.standardizer") == 1
    starts = [e.details for e in AuditLog(store).entries() if e.action == "federation.run_start"]
    assert [s["resume_from"] for s in starts] == [0, 1, 2]
    # the members were told the consortium's round, not the resumed run's own count
    with np.load(tmp_path / "model-0" / "global.npz") as saved:
        assert int(saved["server_round"]) == 2
    store.close()


def test_round_below_minimum_fails_and_keeps_last_checkpoint(member_files: list[Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    # the stats round before training is the first to miss the quorum
    with pytest.raises(FederationError, match="round 1 stats: 1 member"):
        _run([str(member_files[0]), str(tmp_path / "missing.parquet")], url, 1, tmp_path)
    store = open_store(url)
    assert [r.version for r in ModelRegistry(store).list()] == [0]
    actions = [e.action for e in AuditLog(store).entries()]
    assert "federation.member_failed" in actions and "federation.round_failed" in actions
    store.close()


def test_secure_aggregation_rounds_checkpoint_and_publish(member_files: list[Path], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    paths = [str(p) for p in member_files]
    _run(paths, url, 2, tmp_path, secure=True)
    store = open_store(url)
    registry = ModelRegistry(store)
    checkpoints = registry.list("consortium-attack-classifier")
    assert [r.version for r in checkpoints] == [0, 1, 2]
    assert all(r.metadata.get("secure_aggregation") for r in checkpoints[1:])
    # the run's final global model is published for the members to pull
    published = registry.list("consortium-attack-classifier.published")
    assert [r.version for r in published] == [2] and published[0].sha256 == checkpoints[-1].sha256
    starts = [e.details for e in AuditLog(store).entries() if e.action == "federation.run_start"]
    assert starts[0]["secure_aggregation"] is True
    # the members' evaluation saw the aggregated model
    assert (tmp_path / "model-0" / "global.npz").is_file()
    store.close()


def test_secure_aggregation_survives_a_member_dropping_out_mid_protocol(member_files: list[Path],
                                                                       tmp_path: Path) -> None:
    # the third member answers the key exchange, then fails to train (its data is gone): two remain
    url = f"sqlite:///{tmp_path / 'm.db'}"
    paths = [str(p) for p in member_files] + [str(tmp_path / "gone.parquet")]
    _run(paths, url, 1, tmp_path, secure=True, **{"min-available-nodes": 3, "fraction-evaluate": 0.0,
                                                  "min-evaluate-nodes": 0})
    store = open_store(url)
    assert [r.version for r in ModelRegistry(store).list("consortium-attack-classifier")] == [0, 1]
    failed = [e.details for e in AuditLog(store).entries() if e.action == "federation.member_failed"]
    store.close()
    # the stats round (consortium standardisation) and the training round both go on with two members
    assert [(f["phase"], f["ok"], f["failed"]) for f in failed] == [("stats", 2, 1), ("train", 2, 1)]
    assert [f["no_reply_node_ids"] for f in failed] == [["13"], ["13"]]  # the member without data


def test_secure_aggregation_with_member_level_dp_writes_each_runs_spend_to_the_privacy_ledger(
    member_files: list[Path], tmp_path: Path
) -> None:
    from mamori.federation import MemberDPConfig, central_dp_epsilon, member_dp_noise
    from mamori.federation.accounting import MECHANISM_CENTRAL
    from mamori.store import PrivacyLedger

    # Prepare: the coordinator knows node 11 as bank-a (registered.json); node 12 is not in it
    url = f"sqlite:///{tmp_path / 'm.db'}"
    registered = tmp_path / "registered.json"
    registered.write_text(json.dumps({"bank-a": {"node_id": "11", "fingerprint": "SHA256:ab"}}))
    dp = {"member-dp-epsilon": 8.0, "member-dp-clip": 0.5, "fraction-evaluate": 0.0, "min-evaluate-nodes": 0,
          "registered-file": str(registered)}
    paths = [str(p) for p in member_files]
    # Execute: run 1 trains rounds 1-2 (noise planned for 2 releases); run 2 resumes and adds round 3
    _run(paths, url, 2, tmp_path, secure=True, run_id=1, **dp)
    _run(paths, url, 3, tmp_path, secure=True, run_id=2, **dp)
    # Assert: the model moved under DP
    store = open_store(url)
    registry = ModelRegistry(store)
    versions = {r.version: registry.get(r.sha256).arrays() for r in registry.list("consortium-attack-classifier")}
    starts = [e.details for e in AuditLog(store).entries() if e.action == "federation.run_start"]
    assert [s["member_dp"] for s in starts] == [True, True]
    assert any(not np.array_equal(a, b) for a, b in zip(versions[0], versions[3], strict=True))
    # ...and every round of both runs is in the ledger, per member, under the audit's run id
    ledger = PrivacyLedger(store)
    entries = ledger.entries()
    totals = {t.member: t for t in ledger.totals()}
    store.close()
    assert [(e.run_id, e.server_round, e.member) for e in entries] == [
        ("flower-1", 1, "bank-a"), ("flower-1", 1, "node-12"), ("flower-1", 2, "bank-a"), ("flower-1", 2, "node-12"),
        ("flower-2", 3, "bank-a"), ("flower-2", 3, "node-12"),
    ]
    assert all(e.unit == "member" and e.mechanism == MECHANISM_CENTRAL and e.delta == 1e-5 for e in entries)
    planned_for_2 = member_dp_noise(MemberDPConfig(epsilon=8.0, clipping_norm=0.5), 2)
    planned_for_3 = member_dp_noise(MemberDPConfig(epsilon=8.0, clipping_norm=0.5), 3)
    run1 = [e for e in entries if e.run_id == "flower-1"]
    assert [e.epsilon for e in run1[:2]] == [pytest.approx(central_dp_epsilon(planned_for_2, 1, 1e-5))] * 2
    assert all(e.epsilon == pytest.approx(8.0, rel=2e-2) and e.epsilon <= 8.0 * (1 + 1e-6) for e in run1[2:])
    assert [e.noise_multiplier for e in run1] == [pytest.approx(planned_for_2)] * 4
    resumed = entries[4]
    assert resumed.steps == 1 and resumed.epsilon == pytest.approx(central_dp_epsilon(planned_for_3, 1, 1e-5))
    # extending the run past its plan shows: the total (basic composition over runs) exceeds the 8.0 asked for
    assert totals["bank-a"].runs == 2 and totals["bank-a"].epsilon == pytest.approx(run1[2].epsilon + resumed.epsilon)
    assert totals["bank-a"].epsilon > 8.0


#: consortium.toml's client_algorithm = "scaffold", server_optimizer = "fedavgm", server_momentum = 0.5, as run config
_SCAFFOLD: dict[str, object] = {"fraction-evaluate": 0.0, "min-evaluate-nodes": 0, "client-algorithm": "scaffold",
                                "server-optimizer": "fedavgm", "server-momentum": 0.5}


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
    grid = _run(paths, url, 3, tmp_path, secure=secure, **_SCAFFOLD)
    first_run = list(seen.rows)
    seen.rows.clear()
    _run(paths, url, 4, tmp_path, secure=secure, run_id=2, **_SCAFFOLD)
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
    kept = grid._contexts[11].state.array_records[_CONTROL_STATE_KEY].to_numpy_ndarrays()
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
