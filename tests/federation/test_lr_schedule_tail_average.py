"""FederationConfig.lr_schedule / lr_floor / tail_average: the coordinator's per-round learning-rate factor reaches
the members, and the run's model is the mean of the last rounds' global weights - in-process and under SecAgg+."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task
from pydantic import ValidationError

from mamori.errors import FederationError
from mamori.federation import EstimatorTrainer, FederationConfig, lr_factor, run_federation, weights_hash
from mamori.federation.schedule import LR_FACTOR_KEY, TailAverage

N_FEATURES = 12
BASE_LR = 0.5


class _Spy:
    """Wraps an EstimatorTrainer; records each train config and the learning rate the estimator trained with."""

    def __init__(self, inner: EstimatorTrainer) -> None:
        self.inner = inner
        self.configs: list[dict[str, Any]] = []
        self.rates: list[float] = []

    def fit(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        self.configs.append(dict(config))
        out = self.inner.fit(arrays, config)
        self.rates.append(float(self.inner.estimator.learning_rate))  # type: ignore[attr-defined]
        return out

    def evaluate(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        return self.inner.evaluate(arrays, config)


def _spies(n: int = 3) -> list[_Spy]:
    members, _, _ = make_non_iid_task(n, N_FEATURES, seed=2)
    return [
        _Spy(
            EstimatorTrainer(
                LogisticEstimator(learning_rate=BASE_LR).init_weights(N_FEATURES),
                m.X_train,
                m.y_train,
                m.X_eval,
                m.y_eval,
            )
        )
        for m in members
    ]


def _initial() -> list[np.ndarray]:
    return LogisticEstimator().init_weights(N_FEATURES).get_weights()


def _config(**kw: Any) -> FederationConfig:
    base: dict[str, Any] = {"num_rounds": 3, "min_train_nodes": 3, "fraction_evaluate": 0.0, "min_evaluate_nodes": 0}
    return FederationConfig(**{**base, **kw})


@pytest.mark.parametrize("secure", [False, True], ids=["in-process", "secagg+"])
def test_each_rounds_learning_rate_factor_reaches_every_member(secure: bool) -> None:
    # Prepare
    spies = _spies()
    config = _config(lr_schedule="cosine", lr_floor=0.5, secure_aggregation=secure, evaluate_initial=False)
    # Execute
    run_federation(spies, _initial(), config)
    # Assert: round r carries lr_factor(cosine, r, 3, 0.5) = 1, 0.75, 0.5; the members train at base x factor
    expected = [lr_factor("cosine", r, 3, 0.5) for r in (1, 2, 3)]
    assert expected == pytest.approx([1.0, 0.75, 0.5])
    for spy in spies:
        assert [c["server_round"] for c in spy.configs] == [1, 2, 3]
        assert [c[LR_FACTOR_KEY] for c in spy.configs] == expected
        assert spy.rates == [BASE_LR * f for f in expected]  # scaled from the base rate, not compounded


def test_a_constant_schedule_sends_no_factor_and_keeps_the_members_rate() -> None:
    spies = _spies()
    run_federation(spies, _initial(), _config(num_rounds=2, evaluate_initial=False))
    assert all(LR_FACTOR_KEY not in c for spy in spies for c in spy.configs)
    assert all(spy.rates == [BASE_LR, BASE_LR] for spy in spies)


@pytest.mark.parametrize("secure", [False, True], ids=["in-process", "secagg+"])
def test_tail_average_returns_the_mean_of_the_last_rounds_global_weights(secure: bool) -> None:
    # Prepare: keep every round's global weights as the coordinator reports them
    checkpoints: dict[int, list[np.ndarray]] = {}
    config = _config(tail_average=2, secure_aggregation=secure, evaluate_initial=False)
    # Execute
    result = run_federation(
        _spies(), _initial(), config, on_checkpoint=lambda r, arrays, _digest: checkpoints.__setitem__(r, arrays)
    )
    # Assert: the mean of rounds 2 and 3 (float64 sum, cast back), hashed as returned; the last round's own hash kept
    expected = [
        ((a.astype(np.float64) + b) / 2).astype(a.dtype) for a, b in zip(checkpoints[2], checkpoints[3], strict=True)
    ]
    for got, want in zip(result.arrays, expected, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(a, b) for a, b in zip(result.arrays, checkpoints[3], strict=True))
    assert result.tail_average == 2 and result.averaged
    assert result.weights_hash == weights_hash(result.arrays)
    assert result.last_round_hash == result.history[-1].weights_hash == weights_hash(checkpoints[3])
    assert result.to_dict()["tail_average"] == 2


def test_without_tail_averaging_the_result_is_the_last_rounds_weights() -> None:
    result = run_federation(_spies(), _initial(), _config(num_rounds=2, tail_average=1, evaluate_initial=False))
    assert result.tail_average == 1 and not result.averaged
    assert result.weights_hash == result.last_round_hash == result.history[-1].weights_hash


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_rounds": 5, "tail_average": 6}, "tail_average=6 exceeds num_rounds=5"),
        ({"lr_floor": 0.5}, "lr_floor=0.5 has no effect with lr_schedule='constant'"),
        ({"lr_schedule": "cosine", "lr_floor": 0.0}, "lr_floor"),
        ({"lr_schedule": "cosine", "lr_floor": 1.5}, "lr_floor"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"tail_average": -1}, "tail_average"),
        ({"trainer_config": {"lr_factor": 0.5}}, r"reserved key\(s\) \['lr_factor'\]"),
    ],
)
def test_invalid_schedule_settings_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FederationConfig(**kwargs)


def test_round_train_config_follows_lr_factor() -> None:
    config = FederationConfig(num_rounds=40, lr_schedule="linear", lr_floor=0.1)
    assert config.round_train_config(1) == {LR_FACTOR_KEY: 1.0}
    assert config.round_train_config(40) == {LR_FACTOR_KEY: pytest.approx(0.1)}
    assert FederationConfig().round_train_config(3) == {}


def test_estimator_trainer_refuses_a_factor_it_cannot_apply() -> None:
    members, _, _ = make_non_iid_task(1, N_FEATURES)

    class _NoRate(LogisticEstimator):
        def __getattribute__(self, name: str) -> Any:
            if name == "learning_rate":
                raise AttributeError(name)
            return super().__getattribute__(name)

    m = members[0]
    plain = EstimatorTrainer(_NoRate().init_weights(N_FEATURES), m.X_train, m.y_train, m.X_eval, m.y_eval)
    with pytest.raises(FederationError, match="no learning_rate attribute"):
        plain.fit(_initial(), {"server_round": 1, LR_FACTOR_KEY: 0.5})
    ok = EstimatorTrainer(LogisticEstimator().init_weights(N_FEATURES), m.X_train, m.y_train, m.X_eval, m.y_eval)
    with pytest.raises(FederationError, match=r"lr_factor must be a number in \(0, 1\]"):
        ok.fit(_initial(), {"server_round": 1, LR_FACTOR_KEY: 2.0})


def test_tail_average_refuses_a_run_that_stopped_before_its_tail() -> None:
    tail = TailAverage(num_rounds=4, tail=3)
    tail.add(2, [np.ones(2, dtype=np.float32)])
    with pytest.raises(FederationError, match="rounds 2..4"):
        tail.result([np.ones(2, dtype=np.float32)])
