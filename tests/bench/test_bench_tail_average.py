"""Server-side tail averaging of the bench's federated classifier (BenchConfig.tail_average)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import mamori.bench.runner as runner
from mamori.bench import BenchConfig, load_generic, run_bench
from mamori.bench.runner import _Context, _members
from mamori.cli.app import app
from mamori.federation import weights_hash
from mamori_testing import FLOW_MAPPING, write_flow_table


def _federate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: int
) -> tuple[Any, dict[str, Any], list[list[np.ndarray]]]:
    """Federate the bench's classifier for 4 rounds on a small flow table, recording each round's global weights."""
    write_flow_table(tmp_path / "flows.csv", n=600)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    config = BenchConfig(institutions=3, alpha=1.0, rounds=4, local_epochs=1, references=False)
    members, _ = _members(ds, config)
    ctx = _Context(ds, config, members)
    rounds: list[list[np.ndarray]] = []
    real = runner.run_federation

    def spy(*args: Any, on_checkpoint: Any = None, **kwargs: Any) -> Any:
        def record(server_round: int, arrays: list[np.ndarray], digest: str) -> None:
            if server_round > 0:
                rounds.append([a.copy() for a in arrays])
            if on_checkpoint is not None:
                on_checkpoint(server_round, arrays, digest)

        return real(*args, on_checkpoint=record, **kwargs)

    monkeypatch.setattr(runner, "run_federation", spy)
    data = [
        (m.name, ctx.scaler.transform(m.X_train), m.y_train, ctx.scaler.transform(m.X_val), m.y_val) for m in members
    ]
    model, info = ctx.federate(
        lambda: ctx.classifier(1, ctx.pos_weight, federated=True),
        data,
        "federated classifier",
        lambda *a: None,
        rounds=4,
        local_epochs=1,
        tail_average=tail,
    )
    return model, info, rounds


@pytest.mark.parametrize("tail", [0, 3])
def test_federated_classifier_is_the_mean_of_the_last_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: int
) -> None:
    model, info, rounds = _federate(tmp_path, monkeypatch, tail)
    assert len(rounds) == 4
    assert info["tail_average"] == max(tail, 1)
    want = rounds[-1] if tail == 0 else [np.mean(arrays, axis=0) for arrays in zip(*rounds[-tail:], strict=True)]
    for got, expected in zip(model.get_weights(), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # The federation itself is unchanged (its last round's weights are those of the last round); final_hash is the
    # hash of the model returned, averaged or not (FederationConfig.tail_average).
    assert info["last_round_hash"] == weights_hash(rounds[-1])
    assert info["final_hash"] == weights_hash(model.get_weights())


@pytest.mark.slow
def test_run_bench_averages_the_federated_and_centralized_classifiers(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    common: dict[str, Any] = {"institutions": 3, "alpha": 1.0, "rounds": 3, "local_epochs": 1, "references": False}
    plain = run_bench(ds, BenchConfig(**common, local_anomaly=False, autoencoder=False))
    tail = run_bench(ds, BenchConfig(**common, local_anomaly=False, autoencoder=False, tail_average=2))
    assert plain["federation"]["classifier"]["tail_average"] == 1
    assert tail["federation"]["classifier"]["tail_average"] == 2
    # The rounds themselves are unchanged; only the deployed models (federated and centralized) are averages.
    assert tail["federation"]["classifier"]["last_round_hash"] == plain["federation"]["classifier"]["final_hash"]
    assert tail["federation"]["classifier"]["final_hash"] != plain["federation"]["classifier"]["final_hash"]
    for key in ("classifier/federated", "classifier/centralized"):
        assert tail["results"][key]["roc_auc"] != plain["results"][key]["roc_auc"], key


def test_cli_documents_the_tail_average_option() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--tail-average" in result.output
