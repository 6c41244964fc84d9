"""The generic adapter on datasets the test writes itself: a labelled CSV table and a log with a labels file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from mamori.bench import BenchConfig, load_dataset, load_generic, run_bench
from mamori.cli.app import app
from mamori.errors import ConfigError, SchemaError
from mamori_testing import FLOW_MAPPING, write_flow_table


def _mapping(folder: Path, body: str) -> Path:
    path = folder / "bench.toml"
    path.write_text(body, encoding="utf-8")
    return path


TABLE_MAPPING = FLOW_MAPPING + 'text = ["url"]\nlog1p = ["bytes_out"]\n'


@pytest.mark.slow
def test_generic_table_loads_and_benches(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=1000)
    ds = load_generic(_mapping(tmp_path, TABLE_MAPPING), split_seed=0)
    assert ds.name == "flows"
    assert set(np.unique(ds.category_train)) == {"benign", "scan", "exfil"}
    assert ds.n_features == 3 + 2 + 64  # numeric, one-hot proto, hashed url
    assert len(ds.y_test) == pytest.approx(0.3 * (len(ds.y_train) + len(ds.y_test)), abs=2)
    config = BenchConfig(
        institutions=3, alpha=1.0, rounds=3, local_epochs=1, max_reference_rows=5000, local_anomaly=False
    )
    result = run_bench(ds, config)
    r = result["results"]
    expected = (
        "classifier/federated",
        "classifier/centralized",
        "classifier/local median",
        "classifier/local worst",
        "hybrid/federated",
        "autoencoder/federated",
        "hist_gradient_boosting/centralized",
        "isolation_forest/centralized",
    )
    for key in expected:
        assert key in r, key
        assert 0.0 <= r[key]["tpr_at_1pct_fpr"] <= 1.0
    assert r["classifier/centralized"]["roc_auc"] > 0.9
    assert r["classifier/federated"]["roc_auc"] > 0.75  # 3 short rounds: learning, not converged
    assert len(result["split"]["institutions"]) == 3


@pytest.mark.slow
def test_server_momentum_reaches_the_federated_classifier_only(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600)
    ds = load_generic(_mapping(tmp_path, TABLE_MAPPING), split_seed=0)
    common = {"institutions": 3, "alpha": 1.0, "rounds": 2, "local_epochs": 1, "references": False}
    plain = run_bench(ds, BenchConfig(**common, local_anomaly=False))
    config = BenchConfig(**common, local_anomaly=False, server_optimizer="fedavgm", server_momentum=0.9, server_lr=0.5)
    momentum = run_bench(ds, config)
    fed, fed_plain = momentum["federation"], plain["federation"]
    assert fed["classifier"]["server_optimizer"] == "fedavgm"
    assert fed["classifier"]["server_lr_momentum"] == [0.5, 0.9]
    assert fed["classifier"]["final_hash"] != fed_plain["classifier"]["final_hash"]
    # The autoencoder keeps plain FedAvg: same weights as without the option.
    assert fed["autoencoder"]["server_optimizer"] == "fedavg"
    assert fed["autoencoder"]["final_hash"] == fed_plain["autoencoder"]["final_hash"]


@pytest.mark.slow
def test_scaffold_reaches_the_federated_classifier_only(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600)
    ds = load_generic(_mapping(tmp_path, TABLE_MAPPING), split_seed=0)
    common = {"institutions": 3, "alpha": 1.0, "rounds": 2, "local_epochs": 1, "references": False}
    plain = run_bench(ds, BenchConfig(**common, local_anomaly=False))
    scaffold = run_bench(ds, BenchConfig(**common, local_anomaly=False, client_algorithm="scaffold"))
    fed, fed_plain = scaffold["federation"], plain["federation"]
    assert (fed["classifier"]["client_algorithm"], fed_plain["classifier"]["client_algorithm"]) == ("scaffold", "plain")
    assert fed["classifier"]["final_hash"] != fed_plain["classifier"]["final_hash"]
    assert fed["classifier"]["bytes_total"] > 1.5 * fed_plain["classifier"]["bytes_total"]  # c travels both ways
    assert scaffold["results"]["classifier/federated"]["roc_auc"] > 0.6  # 2 short rounds: learning, not converged
    assert fed["autoencoder"]["client_algorithm"] == "plain"
    assert fed["autoencoder"]["final_hash"] == fed_plain["autoencoder"]["final_hash"]


def test_generic_log_with_labels_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines, labels = [], []
    for i in range(400):
        attack = i % 5 == 0
        query = "id=1%27%20OR%201=1--" if attack else f"id={rng.integers(1, 999)}"
        lines.append(
            f'10.0.0.{i % 50} - - [26/Nov/2026:10:{i // 60:02d}:{i % 60:02d} +0900] "GET /shop/item?{query} HTTP/1.1" '
            f'200 {rng.integers(200, 900)} "-" "Mozilla/5.0"'
        )
        labels.append({"label": int(attack), "category": "sqli" if attack else "none"})
    (tmp_path / "access.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    pl.DataFrame(labels).write_csv(tmp_path / "labels.csv")
    mapping = _mapping(
        tmp_path,
        '[bench]\nname = "api-log"\npath = "access.log"\nlog_format = "nginx"\nlabels = "labels.csv"\n'
        'label = "label"\npositive = ["1"]\ncategory = "category"\n',
    )
    ds = load_dataset(str(mapping))
    assert ds.name == "api-log"
    assert len(ds.y_train) + len(ds.y_test) == 400
    assert ds.y_train.sum() + ds.y_test.sum() == 80


def test_generic_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no \\[bench\\] table"):
        load_generic(_mapping(tmp_path, 'name = "x"\n'))
    with pytest.raises(ConfigError, match="positive"):
        load_generic(_mapping(tmp_path, '[bench]\npath = "f.csv"\n'))
    write_flow_table(tmp_path / "flows.csv", n=100)
    with pytest.raises(SchemaError, match="'nope'"):
        load_generic(_mapping(tmp_path, '[bench]\npath = "flows.csv"\nlabel = "nope"\npositive = ["bad"]\n'))
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("no-such-set")


def test_cli_bench_on_a_generic_table(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600)
    mapping = _mapping(tmp_path, TABLE_MAPPING)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "generic",
            "--mapping",
            str(mapping),
            "--institutions",
            "3",
            "--alpha",
            "1.0",
            "--rounds",
            "2",
            "--local-epochs",
            "1",
            "--no-references",
            "--no-local-anomaly",
            "--seeds",
            "0,1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mean ± std" in result.output
    payload = json.loads((out / "results-flows.json").read_text())
    assert payload["seeds"] == [0, 1]
    assert payload["aggregate"]["classifier/federated"]["roc_auc"]["n"] == 2


def test_cli_table_renders_single_and_aggregated_results() -> None:
    from mamori.cli.cmd_bench import _table

    single = {
        "classifier/federated": {
            "roc_auc": 0.9,
            "pr_auc": 0.8,
            "f1": 0.7,
            "tpr_at_1pct_fpr": 0.5,
            "unseen": {"tpr_at_1pct_fpr": 0.2},
        }
    }
    agg = {
        "classifier/federated": {
            m: {"mean": 0.5, "std": 0.1, "n": 2} for m in ("roc_auc", "pr_auc", "f1", "tpr_at_1pct_fpr")
        }
    }
    assert _table(single, "t", unseen=True).row_count == 1
    assert _table(agg, "t", unseen=False).row_count == 1


@pytest.mark.slow
def test_cli_bench_secure_aggregation_trains_the_weight_federations_under_secagg(tmp_path: Path) -> None:
    # Prepare: the same split and settings with and without SecAgg+, SCAFFOLD on (its deltas are masked too)
    write_flow_table(tmp_path / "flows.csv", n=600)
    mapping = _mapping(tmp_path, TABLE_MAPPING)
    common = {"institutions": 3, "alpha": 1.0, "rounds": 2, "local_epochs": 1, "references": False}
    plain = run_bench(load_generic(mapping, split_seed=0),
                      BenchConfig(**common, local_anomaly=False, client_algorithm="scaffold"))
    out = tmp_path / "out"
    # Execute
    result = CliRunner().invoke(
        app,
        ["bench", "generic", "--mapping", str(mapping), "--institutions", "3", "--alpha", "1.0", "--rounds", "2",
         "--local-epochs", "1", "--no-references", "--no-local-anomaly", "--client-algorithm", "scaffold",
         "--secure-aggregation", "--out", str(out)],
    )
    # Assert: both weight federations ran under SecAgg+ and score like the plain run (quantization only)
    assert result.exit_code == 0, result.output
    assert "SecAgg+" in result.output
    run = json.loads((out / "results-flows.json").read_text())["runs"][0]
    fed = run["federation"]
    assert fed["classifier"]["secure_aggregation"] and fed["autoencoder"]["secure_aggregation"]
    assert not plain["federation"]["classifier"]["secure_aggregation"]
    assert fed["classifier"]["client_algorithm"] == "scaffold"
    for key in ("classifier/federated", "autoencoder/federated"):
        assert run["results"][key]["roc_auc"] == pytest.approx(plain["results"][key]["roc_auc"], abs=0.02)


def test_secure_aggregation_notes_name_the_shared_models_secagg_does_not_cover() -> None:
    from mamori.cli.cmd_bench import _secure_aggregation_notes

    assert _secure_aggregation_notes(BenchConfig(), "nsl-kdd") == []
    on = BenchConfig(secure_aggregation=True)
    # NSL-KDD's hybrid adds a federated isolation forest and a k-means trust model: their trees and centroids
    # are shared in clear, and the run says so
    nsl = _secure_aggregation_notes(on, "nsl-kdd")
    assert len(nsl) == 2 and "SecAgg+" in nsl[0]
    assert "isolation forest's trees" in nsl[1] and "k-means centroids" in nsl[1]
    assert "centroids" not in _secure_aggregation_notes(on.model_copy(update={"hybrid_trust": False}), "nsl-kdd")[1]
    assert len(_secure_aggregation_notes(on, "csic")) == 1
