"""FederationConfig validation and the EstimatorTrainer adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task
from pydantic import ValidationError

from mamori.errors import FederationError
from mamori.federation import EstimatorTrainer, FederatedEstimator, FederationConfig, LocalTrainer


def test_config_is_frozen_strict_and_consistent() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FederationConfig(num_round=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="proximal_mu > 0"):
        FederationConfig(strategy="fedprox")
    with pytest.raises(ValidationError, match="no effect"):
        FederationConfig(proximal_mu=0.1)
    with pytest.raises(ValidationError, match="reserved"):
        FederationConfig(trainer_config={"seed": 3})
    with pytest.raises(ValidationError):
        FederationConfig(num_rounds=0)
    config = FederationConfig(strategy="fedprox", proximal_mu=0.01)
    with pytest.raises(ValidationError):
        config.num_rounds = 3  # type: ignore[misc]


def test_estimator_trainer_trains_from_the_global_weights_and_evaluates() -> None:
    # Prepare
    members, _, _ = make_non_iid_task(1, 12, 0)
    m = members[0]
    estimator = LogisticEstimator().init_weights(12)
    trainer = EstimatorTrainer(estimator, m.X_train, m.y_train, m.X_eval, m.y_eval)
    start = LogisticEstimator(seed=5).init_weights(12).get_weights()
    assert isinstance(trainer, LocalTrainer) and isinstance(estimator, FederatedEstimator)

    # Execute
    loss0, n_eval, metrics0 = trainer.evaluate(start, {})
    weights, n_train, fit_metrics = trainer.fit(start, {"local_epochs": 2, "proximal_mu": 0.0})
    loss1, _, metrics1 = trainer.evaluate(weights, {})

    # Assert
    assert n_train == len(m.X_train) and n_eval == len(m.X_eval)
    assert [w.shape for w in weights] == [w.shape for w in start]
    assert loss1 < loss0 and metrics1["pr_auc"] > metrics0["pr_auc"]
    assert fit_metrics["train_loss"] > 0
    assert metrics1["positives"] == float(m.y_eval.sum())


def test_proximal_term_keeps_weights_closer_to_the_global_model() -> None:
    members, _, _ = make_non_iid_task(1, 12, 0)
    m = members[0]
    start = LogisticEstimator(seed=5).init_weights(12).get_weights()
    distances = []
    for mu in (0.0, 1.0):
        trainer = EstimatorTrainer(LogisticEstimator().init_weights(12), m.X_train, m.y_train, m.X_eval, m.y_eval)
        weights, _, _ = trainer.fit(start, {"local_epochs": 3, "proximal_mu": mu})
        distances.append(float(np.linalg.norm(weights[0] - start[0])))
    assert distances[1] < distances[0]


def test_single_class_evaluation_split_gives_nan_auc_and_mismatched_rows_fail() -> None:
    X = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)  # noqa: N806
    y = np.zeros(20, dtype=np.int64)
    start = LogisticEstimator().init_weights(12).get_weights()
    trainer = EstimatorTrainer(LogisticEstimator().init_weights(12), X, y, X, y)
    _, _, metrics = trainer.evaluate(start, {})
    assert math.isnan(metrics["pr_auc"])

    bad = EstimatorTrainer(LogisticEstimator().init_weights(12), X, y[:10], X, y)
    with pytest.raises(FederationError, match="X_train has 20 rows but y_train has 10"):
        bad.fit(start, {})
