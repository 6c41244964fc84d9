"""A real Flower federation (ServerApp + ClientApps, Flower's FedAvg/FedProx) on a tiny non-IID task."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Mapping

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task
from sklearn.metrics import average_precision_score

from mamori.errors import ConfigError, FederationError
from mamori.federation import (
    EstimatorTrainer,
    FederationConfig,
    RoundReport,
    run_federation,
    weights_hash,
)

N_FEATURES = 12


def _setup(
    n_members: int = 3, seed: int = 0
) -> tuple[list[EstimatorTrainer], list[np.ndarray], np.ndarray, np.ndarray]:
    members, X_test, y_test = make_non_iid_task(n_members, N_FEATURES, seed)  # noqa: N806
    trainers = [
        EstimatorTrainer(LogisticEstimator(seed=i).init_weights(N_FEATURES), m.X_train, m.y_train, m.X_eval, m.y_eval)
        for i, m in enumerate(members)
    ]
    initial = LogisticEstimator(seed=99).init_weights(N_FEATURES).get_weights()
    return trainers, initial, X_test, y_test


def _test_pr_auc(arrays: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> float:  # noqa: N803
    model = LogisticEstimator().init_weights(N_FEATURES).set_weights(arrays)
    return float(average_precision_score(y, model.decision_function(X)))


class SpyTrainer:
    """Wraps a trainer and records the configs it was given."""

    def __init__(self, inner: EstimatorTrainer) -> None:
        self.inner = inner
        self.fit_configs: list[dict] = []

    def fit(self, arrays: list[np.ndarray], config: Mapping) -> tuple[list[np.ndarray], int, dict[str, float]]:
        self.fit_configs.append(dict(config))
        return self.inner.fit(arrays, config)

    def evaluate(self, arrays: list[np.ndarray], config: Mapping) -> tuple[float, int, dict[str, float]]:
        return self.inner.evaluate(arrays, config)


class FailingTrainer(SpyTrainer):
    def fit(self, arrays: list[np.ndarray], config: Mapping) -> tuple[list[np.ndarray], int, dict[str, float]]:
        raise RuntimeError("disk full at the member")


class SlowTrainer(SpyTrainer):
    """A member whose fit blocks until the test releases it (no race against a wall-clock sleep on a busy machine)."""

    def __init__(self, inner: EstimatorTrainer) -> None:
        super().__init__(inner)
        self.release = threading.Event()

    def fit(self, arrays: list[np.ndarray], config: Mapping) -> tuple[list[np.ndarray], int, dict[str, float]]:
        self.release.wait(timeout=60)
        return self.inner.fit(arrays, config)


def test_three_nodes_two_rounds_improve_the_global_model_on_the_test_split() -> None:
    # Prepare
    trainers, initial, X_test, y_test = _setup()  # noqa: N806
    rounds: list[RoundReport] = []
    checkpoints: list[tuple[int, str, list[np.ndarray]]] = []
    config = FederationConfig(num_rounds=2, local_epochs=1, min_train_nodes=3, min_evaluate_nodes=3, seed=7)

    # Execute
    result = run_federation(
        trainers,
        initial,
        config,
        on_round=rounds.append,
        on_checkpoint=lambda r, arrays, digest: checkpoints.append((r, digest, arrays)),
        member_names=["bank-a", "bank-b", "bank-c"],
    )

    # Assert: the global model improved on the held-out test split
    before, after = _test_pr_auc(initial, X_test, y_test), _test_pr_auc(result.arrays, X_test, y_test)
    assert after > before + 0.2, (before, after)
    assert after > 0.6
    # ... round 0 (initial evaluation) + 2 rounds, reported live and in the history
    assert [r.server_round for r in result.history] == [0, 1, 2]
    assert [r.server_round for r in rounds] == [0, 1, 2]
    # ... federated evaluation improved too, per member and aggregated
    assert result.history[2].evaluate_metrics["pr_auc"] > result.history[0].evaluate_metrics["pr_auc"]
    assert result.history[2].evaluate_loss < result.history[0].evaluate_loss
    for member in result.history[2].members:
        assert member.train_status == "ok" and member.evaluate_status == "ok"
        assert member.train_examples > 0 and member.evaluate_examples > 0
        assert 0.0 <= member.evaluate_metrics["pr_auc"] <= 1.0
        assert "train_loss" in member.train_metrics
    assert [m.member for m in result.history[1].members] == ["bank-a", "bank-b", "bank-c"]
    # ... bytes: each round sends the model to 3 members twice (train, evaluate) and gets 3 models back
    model_bytes = sum(a.nbytes for a in initial)
    for report in result.history[1:]:
        assert report.bytes_down > 6 * model_bytes and report.bytes_up > 3 * model_bytes
        assert report.bytes_down == sum(m.bytes_down for m in report.members)
        assert report.seconds > 0
    assert result.history[0].bytes_up < result.history[1].bytes_up  # round 0 only evaluates: no weights come back
    assert result.bytes_down == sum(r.bytes_down for r in result.history)
    # ... checkpoints: one per round with the hash of exactly those weights
    assert [c[0] for c in checkpoints] == [0, 1, 2]
    for (_, digest, arrays), report in zip(checkpoints, result.history, strict=True):
        assert digest == weights_hash(arrays) == report.weights_hash
    assert checkpoints[0][1] == weights_hash(initial)
    assert result.weights_hash == weights_hash(result.arrays) == checkpoints[-1][1]
    assert len({c[1] for c in checkpoints}) == 3
    assert result.to_dict()["rounds"][1]["members"][0]["member"] == "bank-a"


def test_fedprox_sends_mu_to_members_and_runs() -> None:
    # Prepare
    trainers, initial, X_test, y_test = _setup()  # noqa: N806
    spies = [SpyTrainer(t) for t in trainers]
    config = FederationConfig(strategy="fedprox", proximal_mu=0.5, num_rounds=2, seed=3, trainer_config={"tag": "x"})

    # Execute
    result = run_federation(spies, initial, config)
    fedavg = run_federation(trainers, initial, FederationConfig(num_rounds=2, seed=3))

    # Assert
    assert result.strategy == "fedprox"
    for spy in spies:
        assert [c["server_round"] for c in spy.fit_configs] == [1, 2]
        assert all(c["proximal_mu"] == 0.5 and c["local_epochs"] == 1 and c["tag"] == "x" for c in spy.fit_configs)
    seeds = [c["seed"] for spy in spies for c in spy.fit_configs]
    assert len(set(seeds)) == len(seeds)  # distinct per member and round
    assert result.weights_hash != fedavg.weights_hash
    assert _test_pr_auc(result.arrays, X_test, y_test) > _test_pr_auc(initial, X_test, y_test) + 0.2


def test_same_seed_gives_the_same_global_model() -> None:
    trainers, initial, _, _ = _setup()
    config = FederationConfig(num_rounds=2, fraction_train=0.67, min_train_nodes=2, seed=11)

    first = run_federation(trainers, initial, config)
    second = run_federation(trainers, initial, config)

    assert first.weights_hash == second.weights_hash
    trained = [[m.member for m in r.members if m.train_status == "ok"] for r in first.history[1:]]
    assert all(len(t) == 2 for t in trained)  # fraction_train samples 2 of 3 members


def test_a_failing_member_is_left_out_when_enough_members_remain() -> None:
    # Prepare: member 1 raises in fit; 2 members are enough
    trainers, initial, X_test, y_test = _setup()  # noqa: N806
    members = [trainers[0], FailingTrainer(trainers[1]), trainers[2]]
    config = FederationConfig(num_rounds=2, min_train_nodes=2, seed=1)

    # Execute
    result = run_federation(members, initial, config, member_names=["a", "b", "c"])

    # Assert
    for report in result.history[1:]:
        b = report.members[1]
        assert b.train_status == "error" and "disk full at the member" in (b.error or "")
        assert b.evaluate_status == "ok"  # it can still evaluate the global model
        assert report.failed_members == ["b"]
        assert report.members[0].train_status == "ok" and report.members[2].train_status == "ok"
    assert _test_pr_auc(result.arrays, X_test, y_test) > _test_pr_auc(initial, X_test, y_test)


def test_too_few_successful_members_stop_the_run_with_a_clear_error() -> None:
    trainers, initial, _, _ = _setup()
    members = [trainers[0], FailingTrainer(trainers[1]), trainers[2]]
    config = FederationConfig(num_rounds=2, min_train_nodes=3, seed=1)

    with pytest.raises(FederationError) as info:
        run_federation(members, initial, config, member_names=["a", "b", "c"])

    message = str(info.value)
    assert "round 1 train" in message and "2 member(s) answered" in message and "at least 3" in message
    assert "b (error: RuntimeError: disk full at the member)" in message


def test_a_member_slower_than_the_round_timeout_is_reported_and_skipped() -> None:
    trainers, initial, _, _ = _setup()
    slow_member = SlowTrainer(trainers[2])
    members = [trainers[0], trainers[1], slow_member]
    # generous for the two prompt members even on a loaded CI machine; the slow one never answers in time
    config = FederationConfig(num_rounds=1, min_train_nodes=2, round_timeout_s=5.0, max_parallel_members=3)

    try:
        result = run_federation(members, initial, config)
    finally:
        slow_member.release.set()

    slow = result.history[1].members[2]
    assert slow.train_status == "timeout" and "5.0" in (slow.error or "")
    # the node is still busy with the abandoned fit, so its evaluation misses the deadline as well
    assert slow.evaluate_status == "timeout" and slow.bytes_up == 0
    assert result.history[1].members[0].train_status == "ok"
    assert result.history[1].members[0].evaluate_status == "ok"
    time.sleep(1.5)  # let the abandoned worker thread finish before the next test


def test_inconsistent_metric_names_become_a_federation_error() -> None:
    trainers, initial, _, _ = _setup()

    class ExtraMetric(SpyTrainer):
        def fit(self, arrays, config):  # type: ignore[no-untyped-def]
            weights, n, metrics = self.inner.fit(arrays, config)
            return weights, n, {**metrics, "extra": 1.0}

    members = [trainers[0], ExtraMetric(trainers[1]), trainers[2]]
    with pytest.raises(FederationError, match="same metric names"):
        run_federation(members, initial, FederationConfig(num_rounds=1))


def test_wrong_weight_shapes_from_a_member_are_an_error_reply() -> None:
    trainers, initial, _, _ = _setup()

    class WrongShape(SpyTrainer):
        def fit(self, arrays, config):  # type: ignore[no-untyped-def]
            return [np.zeros(3, dtype=np.float32), arrays[1]], 10, {"train_loss": 0.0}

    members = [trainers[0], WrongShape(trainers[1]), trainers[2]]
    result = run_federation(members, initial, FederationConfig(num_rounds=1, min_train_nodes=2))

    error = result.history[1].members[1].error or ""
    assert "member 'member-1' (train)" in error and "shapes" in error


def test_run_inputs_are_checked() -> None:
    trainers, initial, _, _ = _setup()
    with pytest.raises(ConfigError, match="at least 3"):
        run_federation(trainers[:2], initial, FederationConfig(min_train_nodes=3))
    with pytest.raises(ConfigError, match="lacks fit"):
        run_federation([trainers[0], object()], initial, FederationConfig())  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="distinct names"):
        run_federation(trainers, initial, FederationConfig(), member_names=["a", "a", "b"])
    with pytest.raises(FederationError, match="empty list"):
        run_federation(trainers, [], FederationConfig())


def _own_sockets() -> list[str]:
    out = subprocess.run(["ss", "-tuanp"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if f"pid={os.getpid()}," in line]


def test_a_run_opens_no_socket_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: record every connect/bind this process attempts, and list its sockets with ss during the run
    attempts: list[tuple[str, object]] = []
    original_connect, original_bind = socket.socket.connect, socket.socket.bind

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(("connect", address))
        original_connect(self, address)

    def bind(self: socket.socket, address: object) -> None:
        attempts.append(("bind", address))
        original_bind(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "bind", bind)
    seen_during_run: list[list[str]] = []
    trainers, initial, _, _ = _setup()
    baseline = _own_sockets()

    # Execute
    run_federation(
        trainers, initial, FederationConfig(num_rounds=2), on_round=lambda r: seen_during_run.append(_own_sockets())
    )

    # Assert
    assert attempts == []
    assert len(seen_during_run) == 3
    assert all(sockets == baseline for sockets in seen_during_run), seen_during_run


def test_a_member_with_a_single_class_evaluation_split_is_left_out_of_the_averaged_pr_auc() -> None:
    # Prepare: member 0 evaluates on benign rows only, so its PR-AUC is undefined (NaN)
    trainers, initial, _, _ = _setup()
    benign = trainers[0].y_eval == 0
    trainers[0].X_eval, trainers[0].y_eval = trainers[0].X_eval[benign], trainers[0].y_eval[benign]

    # Execute
    result = run_federation(trainers, initial, FederationConfig(num_rounds=1, evaluate_initial=False))

    # Assert
    report = result.history[-1]
    assert [r.server_round for r in result.history] == [1]
    assert np.isnan(report.members[0].evaluate_metrics["pr_auc"])
    others = [m.evaluate_metrics["pr_auc"] for m in report.members[1:]]
    assert min(others) <= report.evaluate_metrics["pr_auc"] <= max(others)
    assert report.to_dict()["members"][0]["evaluate_metrics"]["pr_auc"] is None  # JSON-safe


def test_federated_evaluation_can_be_turned_off() -> None:
    trainers, initial, _, _ = _setup()

    result = run_federation(trainers, initial, FederationConfig(num_rounds=2, fraction_evaluate=0.0))

    assert [r.server_round for r in result.history] == [1, 2]
    assert all(r.evaluate_loss is None and r.evaluate_metrics == {} for r in result.history)
    assert all(m.evaluate_status == "skipped" for r in result.history for m in r.members)
