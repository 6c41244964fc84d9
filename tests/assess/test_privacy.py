"""Membership-inference audit: a memorising model leaks, a model that learned nothing does not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from mamori.assess import MembershipAuditConfig, audit_membership, pool_audit_runs, tpr_at_fpr
from mamori.errors import ConfigError


def _population(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)  # noqa: N806
    y = (X[:, 0] + rng.normal(0, 1.5, n) > 0).astype(np.int64)  # noisy labels: memorising them is visible
    is_member = np.zeros(n, dtype=bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    return X, y, is_member


def _memoriser(X: np.ndarray, y: np.ndarray, seed: int = 0):  # type: ignore[no-untyped-def]  # noqa: N803
    """1-nearest-neighbour 'model': confident (+-4) on its training rows, less so the farther a row is."""
    knn = KNeighborsClassifier(n_neighbors=1).fit(X, y)

    def score(Z: np.ndarray) -> np.ndarray:  # noqa: N803
        dist, idx = knn.kneighbors(Z, n_neighbors=1)
        return (2.0 * y[idx[:, 0]] - 1.0) * 4.0 * np.exp(-dist[:, 0])

    return score


def test_a_memorising_model_is_caught_by_loss_and_lira_attacks() -> None:
    # Prepare
    X, y, member = _population()  # noqa: N806
    target = _memoriser(X[member], y[member])
    # Execute
    report = audit_membership(target, X, y, member, shadow_trainer=_memoriser,
                              config=MembershipAuditConfig(n_shadows=4))
    # Assert
    assert report.n_members == report.n_nonmembers == 1000
    assert report.attacks["loss"].auc > 0.6
    assert report.attacks["lira"].auc > 0.7
    assert report.attacks["lira"].tpr_at_fpr[0.01] > 0.1  # far above the 1 % chance level
    assert report.worst(0.01).tpr_at_fpr[0.01] >= report.attacks["lira"].tpr_at_fpr[0.01]
    assert "n_members" in report.to_dict()


def test_a_model_that_learned_nothing_about_its_members_is_at_chance() -> None:
    X, y, member = _population(seed=1)  # noqa: N806
    w = np.array([1.0, 0, 0, 0, 0, 0], dtype=np.float32)
    report = audit_membership(lambda Z: Z @ w, X, y, member, shadow_trainer=lambda a, b, s: (lambda Z: Z @ w),  # noqa: N803
                              config=MembershipAuditConfig(n_shadows=2))
    for result in report.attacks.values():
        assert abs(result.auc - 0.5) < 0.05
        assert result.tpr_at_fpr[0.1] < 0.2


def test_arts_black_box_attack_is_cross_fitted_and_judges_every_record_once() -> None:
    X, y, member = _population(n=1200, seed=2)  # noqa: N806
    groups = np.arange(1200) // 3  # three rows per customer; a customer's rows stay on one side
    report = audit_membership(_memoriser(X[member], y[member]), X, y, member,
                              config=MembershipAuditConfig(attacks=("art",)), groups=groups)
    art = report.attacks["art"]
    assert art.n_members + art.n_nonmembers == 1200  # each half judged by the model fitted on the other
    assert art.auc > 0.6


def test_tpr_at_low_fpr_comes_with_its_counts_and_an_interval() -> None:
    # Prepare: 2,000 non-members -> the 0.1 % FPR threshold rests on 2 of them
    X, y, member = _population(n=4000, seed=3)  # noqa: N806
    # Execute
    report = audit_membership(lambda Z: Z[:, 1], X, y, member, config=MembershipAuditConfig(attacks=("loss",)))  # noqa: N803
    loss = report.attacks["loss"]
    # Assert
    assert loss.nonmembers_flagged[0.001] <= 2
    assert loss.members_flagged[0.001] == round(loss.tpr_at_fpr[0.001] * loss.n_members)
    lo, hi = loss.tpr_ci[0.001]
    assert lo <= loss.tpr_at_fpr[0.001] <= hi
    assert any("noisy" in note for note in report.notes)
    assert "tpr_ci" in report.to_dict()["attacks"]["loss"]


def test_clopper_pearson_interval() -> None:
    from mamori.assess.privacy import clopper_pearson

    assert clopper_pearson(0, 1000)[0] == 0.0
    assert clopper_pearson(0, 1000)[1] == pytest.approx(0.00368, abs=1e-4)  # the "rule of three" ~ 3/n
    lo, hi = clopper_pearson(12, 2667)
    assert lo < 12 / 2667 < hi
    assert lo == pytest.approx(0.00232, abs=2e-4) and hi == pytest.approx(0.00785, abs=3e-4)
    with pytest.raises(ConfigError, match="clopper_pearson"):
        clopper_pearson(5, 3)


def test_tpr_at_fpr_and_input_errors() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    scores = np.array([9, 8, 1, 7, 0, 0, 0, 0, 0, 0], dtype=float)
    assert tpr_at_fpr(truth, scores, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(truth, scores, 1 / 7) == pytest.approx(1.0)
    X, y, member = _population(n=50)  # noqa: N806
    with pytest.raises(ConfigError, match="shadow_trainer"):
        audit_membership(lambda Z: Z[:, 0], X, y, member, config=MembershipAuditConfig(attacks=("lira",)))  # noqa: N803
    with pytest.raises(ConfigError, match="both members and non-members"):
        audit_membership(
            lambda Z: Z[:, 0], X, y, np.ones(50, dtype=bool), config=MembershipAuditConfig(attacks=("loss",))  # noqa: N803
        )
    report = audit_membership(lambda Z: Z[:, 0], X, y, member, config=MembershipAuditConfig(attacks=("loss",)))  # noqa: N803
    assert any("cannot be resolved" in note for note in report.notes)


def test_the_bootstrap_interval_covers_the_threshold_and_pooling_runs_narrows_it() -> None:
    # Prepare: scores at chance, judged by three "runs" (independent noise per run, same population)
    rng = np.random.default_rng(3)
    n = 4000
    X = rng.normal(size=(n, 2)).astype(np.float32)  # noqa: N806
    y = (rng.random(n) < 0.2).astype(np.int64)
    member = rng.random(n) < 0.5
    groups = np.arange(n) // 4  # four rows per customer
    config = MembershipAuditConfig(attacks=("loss",), n_bootstrap=200)
    reports = [audit_membership(lambda Z, s=s: Z[:, 0] + np.random.default_rng(s).normal(size=len(Z)),  # noqa: N803
                                X, y, member, groups=groups, config=config) for s in range(3)]
    # Execute
    pooled = pool_audit_runs(reports, "loss", n_bootstrap=200)
    # Assert: every single run has a bootstrap interval; the pooled one counts judgements and holds chance
    for r in reports:
        lo, hi = r.attacks["loss"].tpr_bootstrap_ci[0.001]
        assert lo <= r.attacks["loss"].tpr_at_fpr[0.001] <= hi
    assert pooled.runs == 3 and pooled.n_members == 3 * int(member.sum())
    lo, hi = pooled.tpr_bootstrap_ci[0.01]
    assert lo <= 0.01 <= hi and hi - lo < 0.05
    assert "tpr_bootstrap_ci" in reports[0].to_dict()["attacks"]["loss"]
    other = audit_membership(lambda Z: Z[:, 0], X, y, ~member, groups=groups, config=config)  # noqa: N803
    with pytest.raises(ConfigError, match="different populations"):
        pool_audit_runs([reports[0], other], "loss")
    with pytest.raises(ConfigError, match="no scores for attack 'art'"):
        pool_audit_runs(reports, "art")


def test_pooling_target_models_before_the_threshold_reads_the_fpr_at_chance() -> None:
    # Prepare: five "target models" that learned nothing about membership (scores independent of it), judged
    # on one population of 6,000 records, 3,000 of them non-members: one model's threshold at 1 % FPR rests
    # on 30 non-members, the pooled threshold on 150 non-member judgements
    rng = np.random.default_rng(11)
    n = 6000
    X = rng.normal(size=(n, 2)).astype(np.float32)  # noqa: N806
    y = (rng.random(n) < 0.2).astype(np.int64)
    member = np.zeros(n, dtype=bool)
    member[rng.permutation(n)[: n // 2]] = True
    config = MembershipAuditConfig(attacks=("loss",), n_bootstrap=200, fprs=(0.01,))
    reports = [audit_membership(lambda Z, s=s: np.random.default_rng(s).normal(size=len(Z)),  # noqa: N803
                                X, y, member, config=config) for s in range(5)]
    # Execute
    pooled = pool_audit_runs(reports, "loss", fprs=(0.01,), n_bootstrap=200)
    # Assert: the pooled threshold sits on 1 % of all non-member judgements and the TPR reads the FPR (chance),
    # within its bootstrap interval; the pooled figure is closer to chance than the largest single model's
    assert pooled.runs == 5 and pooled.n_nonmembers == 5 * 3000
    assert pooled.nonmembers_flagged[0.01] <= 150
    assert pooled.tpr_at_fpr[0.01] == pytest.approx(0.01, abs=0.004)
    lo, hi = pooled.tpr_bootstrap_ci[0.01]
    assert lo <= 0.01 <= hi
    largest = max(r.attacks["loss"].tpr_at_fpr[0.01] for r in reports)
    assert abs(pooled.tpr_at_fpr[0.01] - 0.01) <= abs(largest - 0.01)
