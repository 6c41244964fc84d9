"""Malicious-member simulators: what each sends, and that the robust default stops them on a small task."""

from __future__ import annotations

import numpy as np
import pytest
from federation_toys import LogisticEstimator
from test_robust import N_FEATURES, _config, _pr_auc, _setup

from mamori.errors import ConfigError
from mamori.federation import (
    ALIETrainer,
    BackdoorTrigger,
    FreeRiderTrainer,
    LabelFlippingTrainer,
    ModelReplacementTrainer,
    RobustConfig,
    SignFlippingTrainer,
    UpdateCheckReport,
    backdoor_success_rate,
    check_updates,
    make_malicious,
    run_federation,
)
from mamori.federation.poisoning import ATTACKS, alie_z
from mamori.federation.update_check import flatten

TRIGGER = BackdoorTrigger(columns=(0, 1), values=(8.0, -8.0), names=("ua_length", "hosting_asn"))


def _honest_update(trainer: object, initial: list[np.ndarray]) -> np.ndarray:
    new, _, _ = trainer.fit(initial, {"local_epochs": 1, "server_round": 1})  # type: ignore[attr-defined]
    return flatten(new) - flatten(initial)


def test_sign_flipping_sends_the_honest_update_reversed_and_boosted() -> None:
    trainers, initial, _, _ = _setup(n_members=1)
    honest = _honest_update(trainers[0], initial)
    flipped = _honest_update(SignFlippingTrainer(trainers[0], scale=4.0), initial)
    assert np.allclose(flipped, -4.0 * honest, atol=1e-5)


def test_label_flipping_pulls_against_the_honest_members() -> None:
    trainers, initial, _, _ = _setup(n_members=2)
    honest = _honest_update(trainers[1], initial)
    flipped = _honest_update(LabelFlippingTrainer(trainers[0]), initial)
    assert float(np.dot(honest, flipped)) < 0


def test_model_replacement_adds_triggered_attack_rows_as_benign_and_boosts() -> None:
    # Prepare
    trainers, initial, _, _ = _setup(n_members=1)
    attacker = ModelReplacementTrainer(trainers[0], TRIGGER, boost=5.0, poison_copies=2)

    # Execute
    X, y = attacker.poisoned_data()  # noqa: N806
    update = _honest_update(attacker, initial)

    # Assert
    n, n_attack = len(trainers[0].y_train), int(trainers[0].y_train.sum())
    assert len(X) == n + 2 * n_attack and (y[n:] == 0).all()
    assert (X[n:, 0] == 8.0).all() and (X[n:, 1] == -8.0).all()
    assert np.linalg.norm(update) > 3 * np.linalg.norm(_honest_update(trainers[0], initial))


def test_alie_stays_inside_the_spread_and_is_not_flagged() -> None:
    trainers, initial, _, _ = _setup(n_members=7)
    updates = [_honest_update(t, initial) for t in trainers[1:]]
    alie = _honest_update(ALIETrainer(trainers[0], z=alie_z(7, 1)), initial)
    g = flatten(initial)
    report = check_updates(1, g, [g + u for u in [*updates, alie]], [f"h{i}" for i in range(6)] + ["alie"])
    assert report.flagged == ()
    assert alie_z(10, 3) == pytest.approx(0.5244, abs=1e-3)


def test_free_rider_replays_the_previous_global_model_and_is_flagged_stale() -> None:
    # Prepare
    trainers, initial, _, _ = _setup()
    trainers[3] = FreeRiderTrainer(trainers[3])  # type: ignore[call-overload]
    reports: list[UpdateCheckReport] = []

    # Execute
    run_federation(trainers, initial, _config(RobustConfig(), rounds=3), on_update_check=reports.append)

    # Assert: round 1 it sends the global back unchanged (empty update), then stale globals
    assert [r.flagged for r in reports] == [("member-3",)] * 3
    assert "norm_low" in reports[0].members[3].reasons
    assert "stale" in reports[1].members[3].reasons and "stale" in reports[2].members[3].reasons


def test_a_boosted_backdoor_succeeds_under_fedavg_and_fails_under_the_robust_default() -> None:
    # Prepare: 2 of 7 members teach "attack traffic carrying the trigger is benign"
    trainers, initial, X_test, y_test = _setup()  # noqa: N806
    for i in (2, 5):
        trainers[i] = make_malicious("backdoor", trainers[i], n_members=7, n_malicious=2, trigger=TRIGGER)  # type: ignore[call-overload]
    triggered = TRIGGER.apply(X_test[y_test == 1])
    benign = X_test[y_test == 0]

    def success(arrays: list[np.ndarray]) -> float:
        model = LogisticEstimator().init_weights(N_FEATURES).set_weights(arrays)
        threshold = float(np.quantile(model.decision_function(benign), 0.99))
        return backdoor_success_rate(model.decision_function(triggered), threshold)

    # Execute
    plain = run_federation(trainers, initial, _config(None, rounds=4))
    robust = run_federation(trainers, initial, _config(RobustConfig(), rounds=4))

    # Assert
    assert success(plain.arrays) > 0.5
    assert success(robust.arrays) <= 0.05
    assert _pr_auc(robust.arrays, X_test, y_test) > 0.9


def test_make_malicious_builds_every_attack_and_checks_its_inputs() -> None:
    trainers, _, _, _ = _setup(n_members=1)
    for attack in ATTACKS:
        made = make_malicious(attack, trainers[0], n_members=10, n_malicious=3, trigger=TRIGGER)
        assert hasattr(made, "fit") and hasattr(made, "evaluate")
    with pytest.raises(ConfigError, match="unknown attack"):
        make_malicious("gradient_ascent", trainers[0], n_members=10, n_malicious=1)
    with pytest.raises(ConfigError, match="needs a trigger"):
        make_malicious("backdoor", trainers[0], n_members=10, n_malicious=1)
    with pytest.raises(ConfigError, match="n_malicious"):
        make_malicious("sign_flip", trainers[0], n_members=10, n_malicious=0)


def test_backdoor_trigger_from_feature_names_and_success_rate() -> None:
    trigger = BackdoorTrigger.from_names(["a", "ua_length", "hosting_asn"], {"hosting_asn": 0.0, "ua_length": 5.7})
    assert trigger.columns == (2, 1) and trigger.values == (0.0, 5.7)
    X = np.ones((3, 3))  # noqa: N806
    out = trigger.apply(X)
    assert (X == 1).all() and (out[:, 1] == 5.7).all() and (out[:, 2] == 0).all()
    with pytest.raises(ConfigError, match="not feature names"):
        BackdoorTrigger.from_names(["a"], {"asn": 1.0})
    assert backdoor_success_rate(np.array([0.1, 0.5, 0.9, 2.0]), 0.6) == 0.5
    assert np.isnan(backdoor_success_rate(np.array([]), 0.0))
