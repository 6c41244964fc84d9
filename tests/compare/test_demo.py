import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mamori.cli import app
from mamori.compare import ComparisonConfig, DemoConfig, run_demo, split_member

TINY = DemoConfig(
    banks=3,
    days=3,
    test_days=1,
    seed=3,
    scale=0.02,
    comparison=ComparisonConfig(rounds=2, max_benign_train=5_000, hidden=(16,), seed=3),
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    stages: list[str] = []
    results = run_demo(TINY, out, progress=lambda stage, done, total: stages.append(stage))
    results["_stages"] = stages
    return out, results


def test_demo_writes_a_self_contained_report_and_results(demo_run: tuple[Path, dict]) -> None:
    out, results = demo_run
    html = (out / "report.html").read_text()
    # Nothing on the page may load from outside: no http(s) src/href.
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert html.count("data:image/png;base64,") == 3
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk["regimes"]) == {"local", "federated", "centralized"}
    assert [b["bank"] for b in on_disk["data"]["banks"]] == ["bank-01", "bank-02", "bank-03"]


def test_demo_reports_every_regime_per_bank_and_family(demo_run: tuple[Path, dict]) -> None:
    _, results = demo_run
    for regime in ("local", "federated", "centralized"):
        banks = results["regimes"][regime]["banks"]
        assert set(banks) == {"bank-01", "bank-02", "bank-03"}
        for bank in banks.values():
            assert 0.0 <= bank["overall"]["pr_auc"] <= 1.0
            assert 0.0 <= bank["overall"]["fpr"] <= 1.0
    rounds = results["regimes"]["federated"]["rounds"]
    assert [r["round"] for r in rounds][-1] == 2
    assert all(r["bytes_down"] > 0 and r["bytes_up"] > 0 for r in rounds if r["round"] > 0)
    # per-member rows of every round (the dashboard's per-member curves and "rounds joined")
    assert all({m["member"] for m in r["members"]} == {"bank-01", "bank-02", "bank-03"} for r in rounds)
    assert all(m["train_status"] == "ok" for r in rounds if r["round"] > 0 for m in r["members"])
    assert all(m["pr_auc"] is None or 0.0 <= m["pr_auc"] <= 1.0 for r in rounds for m in r["members"])
    assert results["regimes"]["federated"]["bytes_total"] > 0
    assert results["regimes"]["federated"]["secure_aggregation"] is True  # on by default
    assert {"simulate", "features", "local-only", "federated rounds", "centralized"} <= set(results["_stages"])


def test_demo_checkpoints_every_round_in_the_registry(demo_run: tuple[Path, dict]) -> None:
    from mamori.store import ModelRegistry, open_store

    out, _ = demo_run
    store = open_store(f"sqlite:///{out / 'mamori.db'}")
    try:
        versions = [r.version for r in ModelRegistry(store).list("demo-attack-classifier")]
        assert versions == [0, 1, 2]
        assert store.audit.verify().ok
    finally:
        store.close()


def test_split_member_keeps_test_rows_out_of_training_and_calibration() -> None:
    n = 1_000
    X = np.arange(n, dtype=np.float32).reshape(-1, 1)
    y = (np.arange(n) % 10 == 0).astype(np.int64)
    fam = np.where(y == 1, "credential_stuffing", "benign")
    ts = np.arange(n).astype("datetime64[s]").astype("datetime64[us]")
    m = split_member("b", X, y, fam, ts, ts[800], calibration_share=0.2, max_benign_train=10_000, seed=0)
    train_ids = set(m.X_train[:, 0].tolist())
    calib_ids = set(m.X_calib[:, 0].tolist())
    test_ids = set(m.X_test[:, 0].tolist())
    assert max(train_ids | calib_ids) < 800 <= min(test_ids)
    assert not train_ids & calib_ids
    assert m.y_train.sum() == 80  # every training attack kept
    assert len(train_ids) + len(calib_ids) == 800


def test_demo_cli_help_names_the_quick_switch() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    assert "--quick" in result.output


def test_demo_saves_a_scoring_bundle_per_bank_that_scores_like_the_report(demo_run: tuple[Path, dict]) -> None:
    from mamori.detect import ScoringModel

    out, results = demo_run
    assert set(results["models"]) == {"bank-01", "bank-02", "bank-03"}
    bundle = ScoringModel.load(out / "models" / "bank-02.npz")
    assert bundle.threshold == pytest.approx(results["regimes"]["federated"]["banks"]["bank-02"]["threshold"])
    assert bundle.metadata["federation_sha256"] == results["regimes"]["federated"]["final_hash"]


def test_demo_with_dp_trains_the_federated_model_with_dp_sgd_and_records_the_ledger(tmp_path: Path) -> None:
    from mamori.federation import RecordDPConfig
    from mamori.store import PrivacyLedger, open_store

    # Prepare
    config = TINY.model_copy(update={"comparison": TINY.comparison.model_copy(
        update={"record_dp": RecordDPConfig(epsilon=4.0, epochs_per_round=1)})})
    # Execute
    results = run_demo(config, tmp_path)
    # Assert: every bank spent (about) its budget over the 2 rounds, at delta = 1 / its training rows
    dp = results["regimes"]["federated"]["record_dp"]
    assert set(dp["members"]) == {"bank-01", "bank-02", "bank-03"}
    assert all(m["epsilon"] == pytest.approx(4.0, rel=2e-2) and m["epsilon"] <= 4.0 * (1 + 1e-6)
               for m in dp["members"].values())
    assert all(m["rounds"] == 2 and m["noise_multiplier"] > 0 for m in dp["members"].values())
    assert all(0 < m["delta"] < 1e-3 for m in dp["members"].values())
    assert dp["hidden"] == list(config.comparison.dp_hidden)  # the narrower network trains under DP
    assert {m["mechanism"] for m in dp["members"].values()} == {"dp-sgd/poisson-gaussian/pld"}
    store = open_store(f"sqlite:///{tmp_path / 'mamori.db'}")
    try:
        entries = [e for e in PrivacyLedger(store).entries() if e.run_id == dp["ledger_run_id"]]
        assert sorted({(e.member, e.server_round) for e in entries}) == [
            (b, r) for b in ("bank-01", "bank-02", "bank-03") for r in (1, 2)]
        assert {e.unit for e in entries} == {"customer"}
    finally:
        store.close()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["regimes"]["federated"]["record_dp"]["unit"] == "customer"


def test_demo_cli_dp_delta_needs_an_epsilon() -> None:
    result = CliRunner().invoke(app, ["demo", "--quick", "--dp-delta", "1e-5", "--out", "unused"])
    assert result.exit_code != 0
    assert "--dp-epsilon" in result.output
