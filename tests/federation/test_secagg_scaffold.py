"""SCAFFOLD under SecAgg+ (client_algorithm="scaffold" with secure_aggregation=True): the control variate rides
in the one masked vector, so the secure run trains like plain SCAFFOLD and the coordinator never sees a member's
control-variate delta."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task, masked_vectors, record_secure_replies

from mamori.errors import FederationError
from mamori.federation import EstimatorTrainer, FederationConfig, SecureAggregationConfig, run_federation
from mamori.models import AttackClassifier


def _classifier() -> AttackClassifier:
    # A logistic model (no hidden layer) with plain SGD: convex and smooth, so SecAgg+'s quantization error
    # (~1e-5 a round here) is not amplified by later rounds; an MLP with Adam moved up to 2e-4 from the plain
    # run, and 3.5e-4 with SGD, over 16 runs (ReLU kinks and Adam's sign-like first steps).
    return AttackClassifier(hidden_layers=(), epochs=1, batch_size=64, seed=3, dropout=0.0, optimizer="sgd",
                            learning_rate=0.1)


class _Recording(EstimatorTrainer):
    """Remembers the server's control variate it received and the delta it sent, round by round; optionally
    fails to train (drops out after the key exchange) in some rounds."""

    def __init__(self, *args: Any, fail_in: frozenset[int] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_in = fail_in
        self.received: dict[int, list[np.ndarray]] = {}
        self.sent: dict[int, list[np.ndarray]] = {}

    def fit_scaffold(
        self, arrays: list[np.ndarray], control: list[np.ndarray], config: Mapping[str, Any]
    ) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
        server_round = int(config["server_round"])
        if server_round in self.fail_in:
            raise RuntimeError("member outage")
        self.received[server_round] = [c.copy() for c in control]
        weights, delta, n, metrics = super().fit_scaffold(arrays, control, config)
        self.sent[server_round] = [*(w.copy() for w in weights), *(d.copy() for d in delta)]
        return weights, delta, n, metrics


def _members(n: int = 4, fail: dict[int, frozenset[int]] | None = None) -> tuple[list[_Recording], int]:
    members, X_test, _ = make_non_iid_task(n_members=n)  # noqa: N806
    trainers = [
        _Recording(_classifier().init_weights(X_test.shape[1]), m.X_train, m.y_train, m.X_eval, m.y_eval,
                   fail_in=(fail or {}).get(i, frozenset()))
        for i, m in enumerate(members)
    ]
    return trainers, X_test.shape[1]


def _config(**kwargs: Any) -> FederationConfig:
    params: dict[str, Any] = {
        "num_rounds": 3,
        "local_epochs": 2,
        "min_train_nodes": 3,
        "evaluate_initial": False,
        "fraction_evaluate": 0.0,
        "min_evaluate_nodes": 0,
        "client_algorithm": "scaffold",
        "server_optimizer": "fedavgm",
        "server_momentum": 0.5,
        "seed": 4,
        # example counts are below 1000: the masked sum keeps full precision from round 1
        "secagg": SecureAggregationConfig(max_weight=1000),
    }
    return FederationConfig(**{**params, **kwargs})


def test_scaffold_under_secure_aggregation_trains_like_plain_scaffold_through_a_dropout() -> None:
    # Prepare: member 1 drops out of round 2 after the key exchange (3 of 4 remain, the minimum)
    fail = {1: frozenset({2})}
    secure_members, n_features = _members(fail=fail)
    plain_members, _ = _members(fail=fail)
    initial = _classifier().init_weights(n_features).get_weights()
    # Execute
    secure = run_federation(secure_members, initial, _config(secure_aggregation=True))
    plain = run_federation(plain_members, initial, _config())
    # Assert: the same model and the same control variates as plain SCAFFOLD, up to SecAgg+'s quantization
    assert {r.server_round: r.failed_members for r in secure.history} == {1: [], 2: ["member-1"], 3: []}
    for a, b in zip(plain.arrays, secure.arrays, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for s, p in zip(secure_members, plain_members, strict=True):
        assert sorted(s.received) == sorted(p.received)
        for r in s.received:
            for a, b in zip(s.received[r], p.received[r], strict=True):
                np.testing.assert_allclose(a, b, atol=1e-4)
    # c starts at zero, moves, and after the dropout round is c + (3 / 4) * the example-weighted mean of the three
    # deltas in the sum - the plain path's rule
    receiver = secure_members[0]
    assert all(np.all(c == 0) for c in receiver.received[1])
    assert any(np.abs(c).max() > 1e-3 for c in receiver.received[2])
    k = len(initial)
    alive = [m for i, m in enumerate(secure_members) if i != 1]
    rows = np.asarray([len(m.y_train) for m in alive], dtype=np.float64)
    expected = [
        c + 0.75 * sum(w * m.sent[2][k + i] for w, m in zip(rows / rows.sum(), alive, strict=True))
        for i, c in enumerate(receiver.received[2])
    ]
    for got, want in zip(receiver.received[3], expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_coordinator_sees_each_members_weights_and_control_delta_only_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: record every reply the coordinator's grid receives
    seen = record_secure_replies(monkeypatch)
    members, n_features = _members()
    # Execute: two rounds, so the second round's deltas are those of a non-zero c
    run_federation(members, _classifier().init_weights(n_features).get_weights(),
                   _config(num_rounds=2, secure_aggregation=True, min_train_nodes=4))
    # Assert: no reply carries arrays in clear; each masked vector holds weights and delta (one value per
    # parameter of each, plus the weight factor) and is uncorrelated with what the member computed
    assert all(len(arr) == 0 for r in seen for arr in r.content.array_records.values())
    masked = [vector.astype(np.float64)[1:] for vector in masked_vectors(seen)]
    assert len(masked) == 8
    sent = [np.concatenate([a.ravel() for a in m.sent[r]]) for r in (1, 2) for m in members]
    for values in masked:
        assert any(values.size == raw.size for raw in sent)
        spread = 5 / np.sqrt(values.size)  # five standard errors for independent uniform values
        assert abs(values.mean() / SecureAggregationConfig().modulus_range - 0.5) < spread * 12 ** -0.5
        assert max(abs(np.corrcoef(values, raw)[0, 1]) for raw in sent) < spread


def test_a_member_that_cannot_apply_the_correction_fails_its_secure_round_naming_why() -> None:
    members, X_test, _ = make_non_iid_task(n_members=3)  # noqa: N806
    trainers = [
        EstimatorTrainer(LogisticEstimator().init_weights(X_test.shape[1]), m.X_train, m.y_train, m.X_eval, m.y_eval)
        for m in members
    ]
    config = _config(num_rounds=1, secure_aggregation=True, server_optimizer="fedavg", server_momentum=None)
    with pytest.raises(FederationError, match="round 1 train.*gradient_correction"):
        run_federation(trainers, LogisticEstimator().init_weights(X_test.shape[1]).get_weights(), config)


def test_values_beyond_the_clipping_range_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    members, n_features = _members(3)
    config = _config(num_rounds=1, secure_aggregation=True,
                     secagg=SecureAggregationConfig(max_weight=1000, clipping_range=0.05))
    with caplog.at_level(logging.WARNING, logger="mamori.federation.secagg"):
        run_federation(members, _classifier().init_weights(n_features).get_weights(), config)
    warnings = [r.getMessage() for r in caplog.records if "clipping range" in r.getMessage()]
    assert len(warnings) == 3
    assert "member 'member-0', round 1:" in warnings[0]
    assert "±0.05" in warnings[0]
