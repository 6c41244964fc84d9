from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import average_precision_score

from mamori.errors import ConfigError, NotFittedError, SchemaError
from mamori.models import AttackClassifier


def test_learns_a_separable_problem(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    # Execute
    model = AttackClassifier(epochs=15, seed=0).fit(X[:1500], y[:1500])
    scores = model.decision_function(X[1500:])
    # Assert
    assert average_precision_score(y[1500:], scores) > 0.95
    assert (model.predict(X[1500:]) == y[1500:]).mean() > 0.95
    proba = model.predict_proba(X[1500:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.pos_weight_ > 10  # balanced weighting of the rare attack class


def test_decision_function_returns_unsaturated_logits(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    model = AttackClassifier(epochs=30, learning_rate=1e-2, seed=0).fit(X, y)
    far = X[y == 1][:20].copy()
    far[:, 3] += 50.0
    # Execute
    logits = model.decision_function(far)
    # Assert: probabilities would all be 1.0 in float32; logits still rank
    assert logits.dtype == np.float64
    assert logits.max() > 17 and len(np.unique(logits)) == len(logits)


def test_not_fitted_and_bad_input() -> None:
    model = AttackClassifier()
    with pytest.raises(NotFittedError):
        model.decision_function(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        model.get_weights()
    with pytest.raises(SchemaError):
        model.fit(np.zeros((3, 2)), [0, 1, 2])
    fitted = AttackClassifier(epochs=1).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(SchemaError, match="2"):
        fitted.decision_function(np.zeros((2, 5)))


def test_estimator_contract_and_clone() -> None:
    # Prepare
    model = AttackClassifier(hidden_layers=(8,), epochs=3, seed=7)
    # Execute
    copy = clone(model)
    # Assert
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "network_")
    assert "seed=7" in repr(model)


def test_same_seed_same_model(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    # Execute
    a = AttackClassifier(epochs=2, seed=3).fit(X, y)
    b = AttackClassifier(epochs=2, seed=3).fit(X, y)
    c = AttackClassifier(epochs=2, seed=4).fit(X, y)
    # Assert
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_init_weights_without_data_is_identical_across_members() -> None:
    # Execute
    a = AttackClassifier(seed=11).init_weights(20)
    b = AttackClassifier(seed=11).init_weights(20)
    # Assert
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_weights_round_trip(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    trained = AttackClassifier(epochs=2, seed=0).fit(X, y)
    # Execute: a fresh member receives the weights
    member = AttackClassifier(seed=99).set_weights(trained.get_weights())
    # Assert
    np.testing.assert_array_equal(member.decision_function(X), trained.decision_function(X))
    with pytest.raises(SchemaError):
        member.set_weights(trained.get_weights()[:-1])
    with pytest.raises(SchemaError):
        member.set_weights([w.T for w in trained.get_weights()])


def test_fit_local_continues_from_current_weights(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    model = AttackClassifier(epochs=1, seed=0).init_weights(X.shape[1])
    start = model.get_weights()
    # Execute
    model.fit_local(X, y, epochs=1)
    after_one = model.get_weights()
    model.fit_local(X, y, epochs=1)
    # Assert
    assert not np.array_equal(start[0], after_one[0])
    assert model.n_samples_seen_ == X.shape[0]
    assert len(model.loss_history_) == 2
    assert model.loss_history_[1] < model.loss_history_[0]


def test_fedprox_term_keeps_weights_near_the_reference(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    reference = AttackClassifier(seed=0).init_weights(X.shape[1]).get_weights()

    def drift(mu: float) -> float:
        model = AttackClassifier(seed=0, learning_rate=1e-2).set_weights(reference)
        model.fit_local(X, y, epochs=3, proximal_mu=mu, reference_weights=reference)
        return float(sum(((w - r) ** 2).sum() for w, r in zip(model.get_weights(), reference, strict=True)))

    # Execute
    free, prox = drift(0.0), drift(1.0)
    # Assert
    assert prox < 0.5 * free


def test_sgd_optimizer_learns_and_unknown_optimizer_is_refused(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare
    X, y = separable
    # Execute
    model = AttackClassifier(epochs=15, seed=0, optimizer="sgd", learning_rate=0.05).fit(X[:1500], y[:1500])
    # Assert: plain SGD (the federated members' optimiser for skewed consortia) also learns the problem
    assert average_precision_score(y[1500:], model.decision_function(X[1500:])) > 0.95
    assert model.get_params()["optimizer"] == "sgd" and clone(model).optimizer == "sgd"
    with pytest.raises(ConfigError, match="optimizer"):
        AttackClassifier(optimizer="rmsprop").fit(X[:100], y[:100])
    with pytest.raises(ConfigError, match="momentum"):
        AttackClassifier(optimizer="sgd", momentum=1.5).fit(X[:100], y[:100])


def test_fit_averaged_is_the_mean_of_the_last_epochs_weights(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare: a run of e epochs is the first e epochs of a longer run with the same seed.
    X, y = separable
    X, y = X[:600], y[:600]
    snapshots = [AttackClassifier(epochs=e, seed=3).fit(X, y).get_weights() for e in (4, 5, 6)]
    # Execute
    averaged = AttackClassifier(epochs=6, seed=3).fit_averaged(X, y, tail=3)
    plain = AttackClassifier(epochs=6, seed=3).fit_averaged(X, y, tail=1)
    # Assert
    for got, *per_epoch in zip(averaged.get_weights(), *snapshots, strict=True):
        np.testing.assert_allclose(got, np.mean(per_epoch, axis=0), rtol=1e-5, atol=1e-6)
    for got, want in zip(plain.get_weights(), snapshots[-1], strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(averaged.loss_history_) == 6
    with pytest.raises(ConfigError, match="tail"):
        AttackClassifier(epochs=6).fit_averaged(X, y, tail=7)
    with pytest.raises(ConfigError, match="tail"):
        AttackClassifier(epochs=6).fit_averaged(X, y, tail=0)
