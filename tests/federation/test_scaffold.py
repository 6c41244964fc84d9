"""SCAFFOLD control variates (FederationConfig.client_algorithm="scaffold"): the members' correction, the
control variates' round trip through Flower messages, and what it cannot be combined with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from mamori.errors import FederationError
from mamori.federation import EstimatorTrainer, FederationConfig, ScaffoldTrainer, run_federation
from mamori.models import AttackClassifier


def _classifier(**kwargs: Any) -> AttackClassifier:
    params: dict[str, Any] = {"hidden_layers": (8,), "epochs": 1, "batch_size": 64, "seed": 3, "dropout": 0.0}
    params["learning_rate"] = 1e-2
    return AttackClassifier(**{**params, **kwargs})


def test_zero_correction_trains_exactly_like_plain_fit_local() -> None:
    members, _, _ = make_non_iid_task(n_members=1)
    X, y = members[0].X_train, members[0].y_train  # noqa: N806
    plain = _classifier().init_weights(X.shape[1])
    corrected = _classifier().init_weights(X.shape[1])
    plain.fit_local(X, y, epochs=2)
    corrected.fit_local(X, y, epochs=2, gradient_correction=[np.zeros_like(w) for w in corrected.get_weights()])
    for a, b in zip(plain.get_weights(), corrected.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [g.shape for g in corrected.mean_gradient_] == [w.shape for w in corrected.get_weights()]
    assert not hasattr(plain, "mean_gradient_")


def test_with_plain_sgd_the_step_is_the_corrected_mean_gradient() -> None:
    # SCAFFOLD's option II: for SGD, (w_start - w_end) / (steps * lr) = mean(g_raw + c - c_i).
    members, _, _ = make_non_iid_task(n_members=1)
    X, y = members[0].X_train, members[0].y_train  # noqa: N806
    lr = 0.01
    est = _classifier(optimizer="sgd", learning_rate=lr, weight_decay=0.0).init_weights(X.shape[1])
    start = est.get_weights()
    rng = np.random.default_rng(0)
    shift = [rng.normal(0, 0.1, w.shape).astype(np.float32) for w in start]
    est.fit_local(X, y, epochs=2, gradient_correction=shift)
    steps = 2 * -(-len(X) // 64)
    for w0, w1, g, s in zip(start, est.get_weights(), est.mean_gradient_, shift, strict=True):
        np.testing.assert_allclose((w0 - w1) / (steps * lr), g + s, atol=2e-4)


class _Recording(EstimatorTrainer):
    """An EstimatorTrainer that remembers the server's control variate of every round."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[list[np.ndarray]] = []
        self.own_after: list[list[np.ndarray]] = []

    def fit_scaffold(
        self, arrays: list[np.ndarray], control: list[np.ndarray], config: Mapping[str, Any]
    ) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
        self.received.append([c.copy() for c in control])
        out = super().fit_scaffold(arrays, control, config)
        self.own_after.append([c.copy() for c in self.control_])
        return out


def _federate(algorithm: str, rounds: int = 3) -> tuple[list[_Recording], Any, np.ndarray, np.ndarray]:
    members, X_test, y_test = make_non_iid_task(n_members=3)  # noqa: N806
    trainers = []
    for m in members:
        est = _classifier().init_weights(X_test.shape[1])
        trainers.append(_Recording(est, m.X_train, m.y_train, m.X_eval, m.y_eval))
    initial = _classifier().init_weights(X_test.shape[1]).get_weights()
    config = FederationConfig(
        num_rounds=rounds,
        local_epochs=2,
        evaluate_initial=False,
        fraction_evaluate=0.0,
        min_evaluate_nodes=0,
        client_algorithm=algorithm,  # type: ignore[arg-type]
        server_optimizer="fedavgm",
        server_momentum=0.5,
    )
    return trainers, run_federation(trainers, initial, config), X_test, y_test


def test_scaffold_federation_trains_and_control_variates_round_trip() -> None:
    trainers, result, X_test, y_test = _federate("scaffold")  # noqa: N806
    assert all(isinstance(t, ScaffoldTrainer) for t in trainers)
    # It trains: the federated model separates every attack family of the test split.
    model = _classifier().init_weights(X_test.shape[1]).set_weights(result.arrays)
    assert roc_auc_score(y_test, model.decision_function(X_test)) > 0.9
    # The server's control variate starts at zero and is, with every member sampled, the example-weighted
    # mean of the members' own control variates after the previous round; every member receives the same c.
    rows = np.asarray([len(t.y_train) for t in trainers], dtype=np.float64)
    share = rows / rows.sum()
    assert all(len(t.received) == 3 for t in trainers)
    for c in trainers[0].received[0]:
        np.testing.assert_array_equal(c, 0.0)
    for r in (1, 2):
        for t in trainers[1:]:
            for a, b in zip(t.received[r], trainers[0].received[r], strict=True):
                np.testing.assert_array_equal(a, b)
        expected = [sum(s * t.own_after[r - 1][i] for s, t in zip(share, trainers, strict=True)) for i in range(4)]
        for got, want in zip(trainers[0].received[r], expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert any(np.abs(c).max() > 0 for c in trainers[0].received[r])
    # The control variate travels both ways: about twice the plain run's bytes per round.
    _, plain, _, _ = _federate("plain")
    assert result.history[-1].bytes_up > 1.8 * plain.history[-1].bytes_up
    assert result.history[-1].bytes_down > 1.8 * plain.history[-1].bytes_down


def test_scaffold_needs_members_that_apply_the_correction() -> None:
    members, X_test, _ = make_non_iid_task(n_members=2)  # noqa: N806
    trainers = [
        EstimatorTrainer(LogisticEstimator().init_weights(X_test.shape[1]), m.X_train, m.y_train, m.X_eval, m.y_eval)
        for m in members
    ]
    config = FederationConfig(num_rounds=1, evaluate_initial=False, fraction_evaluate=0.0, client_algorithm="scaffold")
    with pytest.raises(FederationError, match="gradient_correction"):
        run_federation(trainers, LogisticEstimator().init_weights(X_test.shape[1]).get_weights(), config)


@pytest.mark.parametrize(
    "clash",
    [
        {"member_dp": {"epsilon": 4.0}},
        {"secure_aggregation": True, "member_dp": {"epsilon": 4.0}},
        {"strategy": "fedprox", "proximal_mu": 0.1},
    ],
)
def test_scaffold_refuses_wrappers_that_expect_one_array_record(clash: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="client_algorithm='scaffold'"):
        FederationConfig(client_algorithm="scaffold", **clash)


def test_learning_rate_schedule_sets_each_rounds_rate_through_flower() -> None:
    # The schedule sees Flower's round numbers (1..num_rounds) in both fit paths; the optimiser of each round
    # is built from the rate set for it.
    members, X_test, _ = make_non_iid_task(n_members=2)  # noqa: N806
    seen: list[tuple[int, float]] = []

    class _Spy(AttackClassifier):
        def _make_optimiser(self, network: Any) -> Any:
            seen.append((id(self), self.learning_rate))
            return super()._make_optimiser(network)

    def schedule(server_round: int) -> float:
        return 1e-2 / server_round

    for algorithm in ("plain", "scaffold"):
        seen.clear()
        trainers = [
            EstimatorTrainer(
                _Spy(hidden_layers=(8,), epochs=1, batch_size=64, seed=3, learning_rate=1e-2).init_weights(
                    X_test.shape[1]
                ),
                m.X_train,
                m.y_train,
                m.X_eval,
                m.y_eval,
                learning_rate_schedule=schedule,
            )
            for m in members
        ]
        config = FederationConfig(
            num_rounds=3,
            local_epochs=1,
            evaluate_initial=False,
            fraction_evaluate=0.0,
            min_evaluate_nodes=0,
            client_algorithm=algorithm,  # type: ignore[arg-type]
        )
        run_federation(trainers, _classifier().init_weights(X_test.shape[1]).get_weights(), config)
        for t in trainers:
            rates = [lr for who, lr in seen if who == id(t.estimator)]
            assert rates == pytest.approx([1e-2, 5e-3, 1e-2 / 3])


def test_learning_rate_schedule_needs_a_learning_rate_and_positive_rates() -> None:
    members, X_test, _ = make_non_iid_task(n_members=1)  # noqa: N806
    m = members[0]

    class _NoRate:
        pass

    with pytest.raises(FederationError, match="learning_rate attribute"):
        EstimatorTrainer(_NoRate(), m.X_train, m.y_train, m.X_eval, m.y_eval, learning_rate_schedule=lambda r: 1e-3)  # type: ignore[arg-type]
    est = _classifier().init_weights(X_test.shape[1])
    trainer = EstimatorTrainer(est, m.X_train, m.y_train, m.X_eval, m.y_eval, learning_rate_schedule=lambda r: 0.0)
    with pytest.raises(FederationError, match="must be > 0"):
        trainer.fit(est.get_weights(), {"server_round": 1, "local_epochs": 1})
