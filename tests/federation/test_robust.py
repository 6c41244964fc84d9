"""Robust aggregation, clipping and the per-round update check on a small non-IID task."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pytest
from federation_toys import LogisticEstimator, MemberData, make_non_iid_task
from pydantic import ValidationError
from sklearn.metrics import average_precision_score

from mamori.errors import FederationError
from mamori.federation import (
    ClippedTrainer,
    EstimatorTrainer,
    FederationConfig,
    RobustConfig,
    SignFlippingTrainer,
    UpdateCheckReport,
    audit_update_check,
    check_updates,
    recommended_robust_config,
    run_federation,
)
from mamori.federation.robust import AGGREGATIONS, clip_update
from mamori.store import open_store

N_FEATURES = 12


def _setup(
    n_members: int = 7, seed: int = 0, non_iid: bool = False
) -> tuple[list[EstimatorTrainer], list[np.ndarray], np.ndarray, np.ndarray]:
    """Members with the same attack families (shifted benign traffic); ``non_iid``: one family each."""
    if non_iid:
        members, X_test, y_test = make_non_iid_task(n_members, N_FEATURES, seed)  # noqa: N806
    else:
        rng = np.random.default_rng(seed)
        attack = rng.normal(0, 1, N_FEATURES)
        attack *= 3.0 / np.linalg.norm(attack)

        def sample(n: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            y = (rng.random(n) < 0.15).astype(np.int64)
            X = rng.normal(0, 1, (n, N_FEATURES)) + shift + np.outer(y, attack)  # noqa: N806
            return X.astype(np.float32), y

        members = []
        for k in range(n_members):
            shift = rng.normal(0, 0.2, N_FEATURES)
            X_tr, y_tr = sample(300 + 50 * k, shift)  # noqa: N806
            X_ev, y_ev = sample(100, shift)  # noqa: N806
            members.append(MemberData(X_tr, y_tr, X_ev, y_ev))
        X_test, y_test = sample(1000, np.zeros(N_FEATURES))  # noqa: N806
    trainers = [
        EstimatorTrainer(LogisticEstimator(seed=i).init_weights(N_FEATURES), m.X_train, m.y_train, m.X_eval, m.y_eval)
        for i, m in enumerate(members)
    ]
    initial = LogisticEstimator(seed=99).init_weights(N_FEATURES).get_weights()
    return trainers, initial, X_test, y_test


def _pr_auc(arrays: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> float:  # noqa: N803
    model = LogisticEstimator().init_weights(N_FEATURES).set_weights(arrays)
    return float(average_precision_score(y, model.decision_function(X)))


def _config(robust: RobustConfig | None, rounds: int = 3, **kw: object) -> FederationConfig:
    return FederationConfig(
        num_rounds=rounds, fraction_evaluate=0.0, min_evaluate_nodes=0, evaluate_initial=False, robust=robust, **kw
    )


# --- the update check -----------------------------------------------------------------------------


def test_check_updates_flags_long_empty_reversed_and_stale_updates() -> None:
    # Prepare: six similar honest updates, then a boosted one, an empty one, a reversed one, a replay
    rng = np.random.default_rng(0)
    g = rng.normal(size=50)
    direction = rng.normal(size=50)
    honest = [g + direction + rng.normal(0, 0.3, 50) for _ in range(6)]
    previous = g - direction
    weights = [*honest, g + 10 * direction, g.copy(), g - direction, previous]
    names = [f"h{i}" for i in range(6)] + ["boosted", "empty", "reversed", "stale"]

    # Execute
    report = check_updates(4, g, weights, names, previous_globals=[previous])

    # Assert
    reasons = {m.member: m.reasons for m in report.members}
    assert report.flagged == ("boosted", "empty", "reversed", "stale")
    assert "norm_high" in reasons["boosted"]
    assert "norm_low" in reasons["empty"]
    assert "cosine" in reasons["reversed"]
    assert "stale" in reasons["stale"]
    assert all(reasons[f"h{i}"] == () for i in range(6))
    assert report.to_dict()["flagged"] == ["boosted", "empty", "reversed", "stale"]


def test_check_updates_needs_one_name_per_update() -> None:
    with pytest.raises(ValueError, match="one per member"):
        check_updates(1, np.zeros(3), [np.ones(3)], ["a", "b"])


def test_clip_update_bounds_the_norm_and_leaves_short_updates_alone() -> None:
    clipped, factor = clip_update(np.array([3.0, 4.0]), 1.0)
    assert np.isclose(np.linalg.norm(clipped), 1.0) and np.isclose(factor, 0.2)
    same, one = clip_update(np.array([0.3, 0.4]), 1.0)
    assert one == 1.0 and np.allclose(same, [0.3, 0.4])


# --- in a federation ------------------------------------------------------------------------------


def test_a_sign_flipping_member_is_flagged_every_round_and_named_in_the_audit_log(tmp_path: object) -> None:
    # Prepare
    trainers, initial, _, _ = _setup()
    trainers[2] = SignFlippingTrainer(trainers[2], scale=4.0)  # type: ignore[call-overload]
    names = [f"bank-{i}" for i in range(7)]
    store = open_store(f"sqlite:///{tmp_path}/audit.db")
    reports: list[UpdateCheckReport] = []

    def on_check(report: UpdateCheckReport) -> None:
        reports.append(report)
        audit_update_check(store.audit.append, report)

    # Execute
    run_federation(trainers, initial, _config(RobustConfig(), rounds=3), member_names=names, on_update_check=on_check)

    # Assert: flagged (and excluded) in every round, and nobody else
    assert [r.flagged for r in reports] == [("bank-2",)] * 3
    assert [r.excluded for r in reports] == [("bank-2",)] * 3
    entries = store.audit.entries()
    assert [(e.action, e.subject, e.details["round"]) for e in entries] == [
        ("federation.update_flagged", "member:bank-2", rnd) for rnd in (1, 2, 3)
    ]
    assert entries[0].details["excluded"] is True
    assert {"norm_high", "cosine"} & set(entries[0].details["reasons"])
    assert store.audit.verify().ok
    store.close()


def test_fedavg_breaks_under_sign_flipping_while_the_default_robust_mode_holds() -> None:
    # Prepare: 2 of 7 members reverse and boost their updates
    trainers, initial, X_test, y_test = _setup()  # noqa: N806
    clean = run_federation(trainers, initial, _config(None, rounds=4))
    for i in (1, 4):
        trainers[i] = SignFlippingTrainer(trainers[i], scale=4.0)  # type: ignore[call-overload]

    # Execute
    plain = run_federation(trainers, initial, _config(None, rounds=4))
    robust = run_federation(trainers, initial, _config(RobustConfig(), rounds=4))

    # Assert
    clean_auc = _pr_auc(clean.arrays, X_test, y_test)
    assert _pr_auc(plain.arrays, X_test, y_test) < clean_auc - 0.2
    assert _pr_auc(robust.arrays, X_test, y_test) > clean_auc - 0.05


@pytest.mark.parametrize("aggregation", sorted(AGGREGATIONS))
def test_every_aggregation_runs_and_learns(aggregation: str) -> None:
    trainers, initial, X_test, y_test = _setup(non_iid=True)  # noqa: N806
    robust = RobustConfig(aggregation=aggregation, assumed_malicious=1, clip="none", check=False)  # type: ignore[arg-type]
    result = run_federation(trainers, initial, _config(robust, rounds=3))
    assert all(np.isfinite(a).all() for a in result.arrays)
    assert _pr_auc(result.arrays, X_test, y_test) > _pr_auc(initial, X_test, y_test)


def test_bulyan_lowers_f_to_what_the_member_count_allows(caplog: pytest.LogCaptureFixture) -> None:
    trainers, initial, _, _ = _setup()
    robust = RobustConfig(aggregation="bulyan", assumed_malicious=3, clip="none", check=False)
    with caplog.at_level(logging.WARNING, logger="mamori.federation.robust"):
        run_federation(trainers, initial, _config(robust, rounds=1))
    assert "tolerates at most 1 malicious" in caplog.text


def test_fixed_clipping_bounds_the_global_step() -> None:
    # Prepare: every member's update is far longer than the bound
    trainers, initial, _, _ = _setup(n_members=4)
    robust = RobustConfig(aggregation="fedavg", clip="fixed", clip_norm=0.05, check=False)

    # Execute
    result = run_federation(trainers, initial, _config(robust, rounds=1))

    # Assert: a mean of updates each of norm <= 0.05 has norm <= 0.05
    step = np.concatenate([(a - b).ravel() for a, b in zip(result.arrays, initial, strict=True)])
    assert 0.0 < np.linalg.norm(step) <= 0.05 + 1e-6


def test_check_action_log_reports_but_keeps_the_update() -> None:
    trainers, initial, _, _ = _setup()
    trainers[0] = SignFlippingTrainer(trainers[0], scale=4.0)  # type: ignore[call-overload]
    reports: list[UpdateCheckReport] = []
    robust = RobustConfig(aggregation="fedavg", clip="none", check_action="log")
    run_federation(trainers, initial, _config(robust, rounds=1), on_update_check=reports.append)
    assert reports[0].flagged == ("member-0",) and reports[0].excluded == ()


def test_excluding_below_the_quorum_is_a_federation_error() -> None:
    trainers, initial, _, _ = _setup(n_members=4)
    for i in (0, 1):
        trainers[i] = SignFlippingTrainer(trainers[i], scale=50.0)  # type: ignore[call-overload]
    # with half of the members boosted the median norm itself is large; flag by a tight norm ratio instead
    robust = RobustConfig(aggregation="fedavg", clip="none", norm_ratio=1.01, min_cosine=1.0)
    with pytest.raises(FederationError, match="update check flagged"):
        run_federation(trainers, initial, _config(robust, rounds=1, min_train_nodes=3))


class _SpyTrainer:
    def __init__(self, inner: EstimatorTrainer) -> None:
        self.inner = inner
        self.configs: list[dict[str, object]] = []

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, object]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        self.configs.append(dict(config))
        return self.inner.fit(arrays, config)  # type: ignore[arg-type]

    def evaluate(self, arrays: list[np.ndarray], config: Mapping[str, object]) -> tuple[float, int, dict[str, float]]:
        return self.inner.evaluate(arrays, config)  # type: ignore[arg-type]


def test_fedprox_mu_still_reaches_members_under_a_robust_rule() -> None:
    trainers, initial, _, _ = _setup(n_members=3)
    spies = [_SpyTrainer(t) for t in trainers]
    config = _config(RobustConfig(aggregation="median"), rounds=1, strategy="fedprox", proximal_mu=0.1)
    run_federation(spies, initial, config)
    assert all(s.configs[0]["proximal_mu"] == pytest.approx(0.1) for s in spies)


def test_clipped_trainer_bounds_its_own_update() -> None:
    trainers, initial, _, _ = _setup(n_members=1)
    new, n, _ = ClippedTrainer(trainers[0], clip_norm=0.01).fit(initial, {"local_epochs": 1})
    step = np.concatenate([(a - b).ravel() for a, b in zip(new, initial, strict=True)])
    assert np.linalg.norm(step) <= 0.01 + 1e-6 and n == len(trainers[0].X_train)


# --- configuration --------------------------------------------------------------------------------


def test_robust_config_is_strict_and_says_what_needs_individual_updates() -> None:
    with pytest.raises(ValidationError):
        RobustConfig(aggregation="mean")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RobustConfig(trim_beta=0.5)
    with pytest.raises(ValidationError):
        RobustConfig(clip_facter=2.0)  # type: ignore[call-arg]
    assert RobustConfig().needs_individual_updates
    assert not RobustConfig.plain().needs_individual_updates
    assert recommended_robust_config("coordinator_sees_updates") == RobustConfig()
    assert recommended_robust_config("secure_aggregation") is None
    with pytest.raises(ValueError, match="deployment"):
        recommended_robust_config("cloud")  # type: ignore[arg-type]
    assert FederationConfig(robust=RobustConfig()).robust == RobustConfig()
