"""Membership-inference audit: a memorising model leaks, a model that learned nothing does not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from mamori.assess import MembershipAuditConfig, audit_membership, tpr_at_fpr
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


def test_arts_black_box_attack_runs_on_a_held_out_half() -> None:
    X, y, member = _population(n=1200, seed=2)  # noqa: N806
    report = audit_membership(_memoriser(X[member], y[member]), X, y, member,
                              config=MembershipAuditConfig(attacks=("art",)))
    art = report.attacks["art"]
    assert art.n_members + art.n_nonmembers < 1200  # judged on the half it was not fitted on
    assert art.auc > 0.6


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
