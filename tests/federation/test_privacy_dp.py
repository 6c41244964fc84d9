"""Record-level DP-SGD (customer units), its accounting, member-level DP on the plain path, ledger rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from federation_toys import LogisticEstimator, make_non_iid_task

from mamori.errors import ConfigError, FederationError, PrivacyBudgetError
from mamori.federation import (
    DPSGDTrainer,
    EstimatorTrainer,
    FederationConfig,
    GaussianAccountant,
    MemberDPConfig,
    RecordDPConfig,
    calibrate_noise,
    central_dp_epsilon,
    dpsgd_epsilon,
    privacy_spends,
    privacy_units,
    run_federation,
)
from mamori.models import AttackClassifier

N_FEATURES = 12


def _model() -> AttackClassifier:
    return AttackClassifier(hidden_layers=(16,), dropout=0.0, seed=0).init_weights(N_FEATURES)


def _dp_trainers(epsilon: float, rounds: int, n: int = 2, *, reproducible_noise: bool = True) -> list[DPSGDTrainer]:
    members, _, _ = make_non_iid_task(n, N_FEATURES, seed=0)
    return [
        DPSGDTrainer(
            _model(),
            m.X_train,
            m.y_train,
            np.arange(len(m.X_train)) // 2,  # 2 rows per customer
            m.X_eval,
            m.y_eval,
            RecordDPConfig(epsilon=epsilon, expected_batch_units=32, epochs_per_round=1),
            num_rounds=rounds,
            name=f"bank-{i}",
            reproducible_noise=reproducible_noise,
        )
        for i, m in enumerate(members)
    ]


def test_calibrated_noise_spends_exactly_the_budget_and_grows_as_the_budget_shrinks() -> None:
    sigmas = {}
    for eps in (1.0, 8.0):
        sigmas[eps] = calibrate_noise(eps, 1e-5, steps=200, sample_rate=0.05)
        assert dpsgd_epsilon(sigmas[eps], 0.05, 200, 1e-5) == pytest.approx(eps, rel=2e-2)
    assert sigmas[1.0] > sigmas[8.0]
    central = calibrate_noise(2.0, 1e-5, steps=10, mechanism="central-gaussian/fixed-clipping/rdp")
    assert central_dp_epsilon(central, 10, 1e-5) == pytest.approx(2.0, rel=2e-2)
    with pytest.raises(ConfigError, match="epsilon"):
        calibrate_noise(0.0, 1e-5, steps=10)


def test_the_accountant_refuses_a_release_that_would_exceed_the_budget() -> None:
    accountant = GaussianAccountant(1.0, 1e-5, 5.0, where="member 'bank-a'")
    spent: list[float] = []
    with pytest.raises(PrivacyBudgetError, match="member 'bank-a'.*above the budget of 1"):
        while True:
            accountant.check(1)
            spent.append(accountant.spend(1))
    assert len(spent) >= 1 and spent == sorted(spent) and spent[-1] <= 1.0
    assert accountant.steps == len(spent)  # the refused release was not spent


def test_privacy_units_group_rows_by_customer_then_fallback() -> None:
    units = privacy_units(["u1", None, "u1", None, "", None], ["1.1.1.1", "2.2.2.2", "9.9.9.9", "2.2.2.2", None, None])
    assert units[0] == units[2]  # same customer, whatever the IP
    assert units[1] == units[3]  # no customer: grouped by the fallback key
    assert len({units[0], units[1], units[4], units[5]}) == 4  # nothing to group by: one unit per row


def test_dp_sgd_members_spend_their_budget_over_the_planned_rounds_and_report_it() -> None:
    # Prepare
    rounds = 2
    trainers = _dp_trainers(epsilon=4.0, rounds=rounds)
    config = FederationConfig(num_rounds=rounds, min_train_nodes=2)
    initial = _model().get_weights()
    # Execute
    result = run_federation(trainers, initial, config, member_names=["a", "b"])
    spends = [s for r in result.history for s in privacy_spends(r, config)]
    # Assert: per member and round a ledger row; the last one reaches (not exceeds) the budget
    assert [(s.member, s.server_round) for s in spends] == [(m, r) for r in (1, 2) for m in "ab"]
    final = [s for s in spends if s.server_round == rounds]
    assert all(s.epsilon == pytest.approx(4.0, rel=2e-2) and s.epsilon <= 4.0 * (1 + 1e-6) for s in final)
    first = [s for s in spends if s.server_round == 1]
    assert all(0 < s.epsilon < 4.0 for s in first)
    assert {s.unit for s in spends} == {"customer"}
    assert all(s.delta == pytest.approx(1 / len(t.X_train)) for s, t in zip(final, trainers, strict=True))
    assert result.history[-1].evaluate_metrics["roc_auc"] > 0.5  # it still learns


def test_training_beyond_the_planned_rounds_stops_with_a_privacy_budget_error() -> None:
    trainers = _dp_trainers(epsilon=2.0, rounds=1)
    config = FederationConfig(num_rounds=2, min_train_nodes=2, evaluate_initial=False)
    with pytest.raises(PrivacyBudgetError, match="round 2 train.*refused to train beyond their privacy budget"):
        run_federation(trainers, _model().get_weights(), config)


def test_customers_not_rows_are_the_sampling_unit() -> None:
    # Prepare: a customer with 300 rows next to 99 customers with 1 row
    rng = np.random.default_rng(0)
    X = rng.normal(size=(399, N_FEATURES)).astype(np.float32)  # noqa: N806
    y = (rng.random(399) < 0.5).astype(np.int64)
    units = np.concatenate([np.zeros(300, dtype=np.int64), np.arange(1, 100)])
    trainer = DPSGDTrainer(
        _model(), X, y, units, X, y, RecordDPConfig(epsilon=50.0, max_grad_norm=0.1, expected_batch_units=100,
                                                    learning_rate=1.0, rows_per_unit=400), num_rounds=1,
    )
    trainer._prepare()
    # Assert: 100 units, all sampled each step (q = 100 / 100); delta defaults to 1 / records
    assert trainer.n_units_ == 100
    assert trainer.sample_rate_ == 1.0
    assert trainer.delta_ == pytest.approx(1 / 399)
    assert [len(r) for r in trainer.unit_rows_][:2] == [300, 1]


class _BigUpdate:
    """A member whose update is enormous: member-level DP must clip it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def fit(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        weights, n, metrics = self.inner.fit(arrays, config)
        return [w + 100.0 for w in weights], n, metrics

    def evaluate(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        return self.inner.evaluate(arrays, config)


def test_member_level_dp_clips_every_update_and_adds_noise_on_the_plain_path() -> None:
    # Prepare
    members, _, _ = make_non_iid_task(3, N_FEATURES, seed=0)
    trainers: list[Any] = [
        EstimatorTrainer(LogisticEstimator().init_weights(N_FEATURES), m.X_train, m.y_train, m.X_eval, m.y_eval)
        for m in members
    ]
    trainers[0] = _BigUpdate(trainers[0])
    initial = LogisticEstimator().init_weights(N_FEATURES).get_weights()
    quiet = MemberDPConfig(epsilon=1.0, clipping_norm=0.5, noise_multiplier=1e-6)
    # Execute
    result = run_federation(trainers, initial, FederationConfig(num_rounds=1, min_train_nodes=3, member_dp=quiet))
    noisy = run_federation(
        trainers, initial, FederationConfig(num_rounds=1, min_train_nodes=3, member_dp=MemberDPConfig(epsilon=1.0))
    )
    # Assert: the global step is the mean of clipped updates (norm <= C), with noise when sigma > 0
    step = np.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(result.arrays, initial, strict=True)))
    assert step <= 0.5 + 1e-3
    assert not np.allclose(noisy.arrays[0], result.arrays[0], atol=1e-3)
    assert "member_dp_weight" in result.history[-1].members[0].train_metrics


def test_event_privacy_units_follow_the_documented_rule() -> None:
    import polars as pl

    from mamori.federation import event_privacy_units

    # Prepare: a customer's own rows, a hijacked session of the same customer, logins naming identities,
    # anonymous rows from one address (benign and attack), and rows with nothing to group by
    events = pl.DataFrame({
        "user.id": ["c1", "c1", None, None, None, None, None, None, ""],
        "user.name": [None, None, "alice", "alice", None, None, None, None, None],
        "source.ip": ["1.1.1.1", "6.6.6.6", "2.2.2.2", "3.3.3.3", "7.7.7.7", "7.7.7.7", "7.7.7.7", "7.7.7.7", None],
    })
    attack = np.array([0, 1, 0, 1, 0, 0, 1, 1, 0], dtype=bool)
    # Execute
    grouped = event_privacy_units(events)
    units = event_privacy_units(events, attack=attack)
    # Assert
    assert units[0] == units[1]  # the victim's hijacked session is the victim's data
    assert units[2] == units[3]  # attempts on one identity form one unit, attack or not
    assert units[4] == units[5]  # anonymous benign rows: grouped by address
    assert len({units[4], units[6], units[7]}) == 3  # the attacker's anonymous rows: one unit each
    assert grouped[4] == grouped[6] == grouped[7]  # without labels, grouped by address
    assert units[8] not in set(units[:8])  # nothing to group by: its own unit
    assert np.array_equal(grouped, privacy_units(events["user.id"].to_list(), [
        n if n else ip for n, ip in zip(events["user.name"].to_list(), events["source.ip"].to_list(), strict=True)]))
    with pytest.raises(ConfigError, match="attack has 2 values for 9 events"):
        event_privacy_units(events, attack=[True, False])


def test_averaging_the_iterates_is_post_processing_same_spend_other_weights() -> None:
    # Prepare: the same member with and without averaging, same seed
    members, _, _ = make_non_iid_task(1, N_FEATURES, seed=0)
    m = members[0]

    def trainer(ema_decay: float | None) -> DPSGDTrainer:
        dp = RecordDPConfig(epsilon=4.0, expected_batch_units=32, epochs_per_round=2, ema_decay=ema_decay)
        return DPSGDTrainer(_model(), m.X_train, m.y_train, np.arange(len(m.X_train)) // 2, m.X_eval, m.y_eval,
                            dp, num_rounds=1, reproducible_noise=True)

    initial = _model().get_weights()
    # Execute
    last, _, last_metrics = trainer(None).fit(initial, {"seed": 3})
    averaged, _, avg_metrics = trainer(0.9).fit(initial, {"seed": 3})
    # Assert: the accountant is told nothing about the average (it costs no epsilon); the weights differ
    for key in ("dp_epsilon", "dp_noise_multiplier", "dp_steps"):
        assert avg_metrics[key] == last_metrics[key]
    assert not np.allclose(np.concatenate([a.ravel() for a in last]), np.concatenate([a.ravel() for a in averaged]))
    assert all(np.isfinite(a).all() for a in averaged)


def test_dp_sgd_trains_at_the_coordinators_learning_rate_factor_for_the_same_spend() -> None:
    # Prepare: one member, one seed; the coordinator's schedule sends lr_factor (FederationConfig.lr_schedule)
    initial = _model().get_weights()

    def step_size(config: dict[str, Any]) -> tuple[float, dict[str, float]]:
        weights, _, metrics = _dp_trainers(epsilon=4.0, rounds=1, n=1)[0].fit(initial, config)
        moved = np.concatenate([(a - b).ravel() for a, b in zip(weights, initial, strict=True)])
        return float(np.linalg.norm(moved)), metrics

    # Execute
    full, full_metrics = step_size({"seed": 3})
    same, _ = step_size({"seed": 3, "lr_factor": 1.0})
    tenth, tenth_metrics = step_size({"seed": 3, "lr_factor": 0.1})
    # Assert: factor 1 is the unscheduled run; a tenth of the rate moves the model far less, at the same epsilon
    assert same == pytest.approx(full)
    assert tenth < 0.3 * full
    for key in ("dp_epsilon", "dp_noise_multiplier", "dp_steps"):
        assert tenth_metrics[key] == full_metrics[key]


def test_dp_sgd_refuses_a_malformed_learning_rate_factor_before_spending() -> None:
    trainer = _dp_trainers(epsilon=4.0, rounds=1, n=1)[0]
    with pytest.raises(FederationError, match=r"DPSGDTrainer \(member 'bank-0'\): lr_factor must be a number in"):
        trainer.fit(_model().get_weights(), {"seed": 3, "lr_factor": 1.5})
    # the refused round spent nothing: the planned round still fits the budget
    _, _, metrics = trainer.fit(_model().get_weights(), {"seed": 3})
    assert metrics["dp_epsilon"] == pytest.approx(4.0, rel=2e-2)


def test_the_noise_cannot_be_regenerated_from_the_round_seed_the_coordinator_sends() -> None:
    # Prepare: the same member data, model and round config, built twice
    initial = _model().get_weights()
    config = {"seed": 3}
    # Execute
    secret = [_dp_trainers(4.0, 1, n=1, reproducible_noise=False)[0].fit(initial, config)[0] for _ in range(2)]
    seeded = [_dp_trainers(4.0, 1, n=1)[0].fit(initial, config)[0] for _ in range(2)]
    # Assert: by default each member mixes in its own secret, so knowing the round's seed (the coordinator and
    # every member do) does not reproduce its noise or its sampled customers; reproducible_noise=True does
    assert not np.allclose(secret[0][0], secret[1][0])
    for a, b in zip(seeded[0], seeded[1], strict=True):
        np.testing.assert_array_equal(a, b)
