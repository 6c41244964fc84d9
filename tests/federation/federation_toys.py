"""Small stand-ins for the federation tests: a NumPy logistic regression with the estimator contract
of mamori.models, and a synthetic non-IID binary task split across members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class LogisticEstimator:
    """Logistic regression trained by full-batch gradient descent; the FederatedEstimator contract."""

    def __init__(self, learning_rate: float = 0.5, seed: int = 0) -> None:
        self.learning_rate = learning_rate
        self.seed = seed

    def init_weights(self, n_features: int) -> LogisticEstimator:
        rng = np.random.default_rng(self.seed)
        self.coef_ = rng.normal(0.0, 0.01, size=n_features).astype(np.float32)
        self.intercept_ = np.zeros(1, dtype=np.float32)
        return self

    def get_weights(self) -> list[np.ndarray]:
        return [self.coef_.copy(), self.intercept_.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> LogisticEstimator:
        coef, intercept = weights
        self.coef_ = np.asarray(coef, dtype=np.float32).copy()
        self.intercept_ = np.asarray(intercept, dtype=np.float32).copy()
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return (np.asarray(X, dtype=np.float32) @ self.coef_ + self.intercept_[0]).astype(np.float64)

    def fit_local(
        self,
        X: np.ndarray,  # noqa: N803
        y: np.ndarray,
        epochs: int,
        proximal_mu: float = 0.0,
        reference_weights: list[np.ndarray] | None = None,
    ) -> LogisticEstimator:
        X = np.asarray(X, dtype=np.float64)  # noqa: N806
        y = np.asarray(y, dtype=np.float64)
        coef = self.coef_.astype(np.float64)
        intercept = float(self.intercept_[0])
        ref_coef, ref_int = (
            (coef.copy(), intercept)
            if reference_weights is None
            else (
                reference_weights[0].astype(np.float64),
                float(reference_weights[1][0]),
            )
        )
        pos_weight = max(1.0, float((y == 0).sum()) / max(1.0, float((y == 1).sum())))
        sample_w = np.where(y == 1, pos_weight, 1.0)
        for _ in range(epochs * 40):
            p = 1.0 / (1.0 + np.exp(-(X @ coef + intercept)))
            err = (p - y) * sample_w / sample_w.sum()
            grad_coef = X.T @ err + proximal_mu * (coef - ref_coef)
            grad_int = err.sum() + proximal_mu * (intercept - ref_int)
            coef -= self.learning_rate * grad_coef
            intercept -= self.learning_rate * grad_int
        self.coef_ = coef.astype(np.float32)
        self.intercept_ = np.array([intercept], dtype=np.float32)
        return self


@dataclass
class MemberData:
    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray


def make_non_iid_task(
    n_members: int = 3, n_features: int = 12, seed: int = 0
) -> tuple[list[MemberData], np.ndarray, np.ndarray]:
    """Each member sees benign traffic with its own shift and only ONE attack family; the held-out
    test split holds every family, so no member alone covers it."""
    rng = np.random.default_rng(seed)
    families = [rng.normal(0, 1, n_features) for _ in range(n_members)]
    for f in families:
        f *= 4.0 / np.linalg.norm(f)

    def sample(n_benign: int, fams: list[int], n_attack: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        benign = rng.normal(0, 1, (n_benign, n_features)) + shift
        attacks = [rng.normal(0, 1, (n_attack, n_features)) + families[k] + shift for k in fams]
        X = np.vstack([benign, *attacks]).astype(np.float32)  # noqa: N806
        y = np.concatenate([np.zeros(n_benign), np.ones(n_attack * len(fams))]).astype(np.int64)
        return X, y

    members = []
    for k in range(n_members):
        shift = rng.normal(0, 0.3, n_features)
        X_tr, y_tr = sample(300 + 100 * k, [k], 30, shift)  # noqa: N806
        X_ev, y_ev = sample(150, [k], 15, shift)  # noqa: N806
        members.append(MemberData(X_tr, y_tr, X_ev, y_ev))
    X_test, y_test = sample(600, list(range(n_members)), 40, np.zeros(n_features))  # noqa: N806
    return members, X_test, y_test


def record_secure_replies(monkeypatch: Any) -> list[Any]:
    """Record every reply the in-process SecAgg+ coordinator receives (its grid, patched for the test)."""
    from mamori.federation import secagg as secagg_module
    from mamori.federation.inprocess import InProcessGrid

    seen: list[Any] = []

    class SpyGrid(InProcessGrid):
        def pull_messages(self, message_ids):  # type: ignore[no-untyped-def]
            replies = list(super().pull_messages(message_ids))
            seen.extend(replies)
            return replies

    monkeypatch.setattr(secagg_module, "InProcessGrid", SpyGrid)
    return seen


def masked_vectors(replies: list[Any]) -> list[np.ndarray]:
    """The SecAgg+ masked vectors among ``replies``, flattened (element 0 is the masked weight factor)."""
    from flwr.common import bytes_to_ndarray
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

    return [
        np.concatenate([bytes_to_ndarray(b).ravel() for b in r.content.config_records[RECORD_KEY_CONFIGS][
            Key.MASKED_PARAMETERS]])
        for r in replies
        if Key.MASKED_PARAMETERS in r.content.config_records.get(RECORD_KEY_CONFIGS, {})
    ]
