"""Server-side optimizers (FedAvgM, FedAdam) behind FederationConfig.server_optimizer, plain and under SecAgg+."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from mamori.federation import (
    FederationConfig,
    MemberDPConfig,
    RobustConfig,
    SecureAggregationConfig,
    run_federation,
)


class Shift:
    """A member whose local training moves every weight by a fixed step: the aggregate is easy to predict."""

    def __init__(self, step: float, examples: int) -> None:
        self.step = step
        self.examples = examples

    def fit(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        return [np.asarray(a, dtype=np.float32) + np.float32(self.step) for a in arrays], self.examples, {}

    def evaluate(self, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        return 0.0, self.examples, {}


def _members() -> list[Shift]:
    # Weighted mean step: (0.01 * 10 + 0.04 * 30) / 40 = 0.0325 per round (small: SecAgg+ quantizes within a
    # clipping range, so large weights would lose precision).
    return [Shift(0.01, 10), Shift(0.04, 30)]


def _initial() -> list[np.ndarray]:
    return [np.zeros((3, 2), dtype=np.float32), np.full(2, 0.1, dtype=np.float32)]


def _run(rounds: int, **kwargs: Any) -> list[np.ndarray]:
    if kwargs.get("secure_aggregation"):
        # A weight range fitting the example counts from round 1 keeps SecAgg+'s quantization error small.
        kwargs["secagg"] = SecureAggregationConfig(max_weight=64.0)
    config = FederationConfig(num_rounds=rounds, evaluate_initial=False, fraction_evaluate=0.0, **kwargs)
    return run_federation(_members(), _initial(), config).arrays


def _fedavgm_reference(rounds: int, lr: float, momentum: float, mean_step: float) -> float:
    """Hsu et al.'s FedAvgM on one scalar: v = momentum * v + (w - mean), w -= lr * v (v starts at the first pg)."""
    w, v = 0.0, None
    for _ in range(rounds):
        pseudo_gradient = w - (w + mean_step)
        v = pseudo_gradient if v is None else momentum * v + pseudo_gradient
        w -= lr * v
    return w


@pytest.mark.parametrize("secure", [False, True])
def test_server_momentum_steps_the_aggregate_as_fedavgm_defines(secure: bool) -> None:
    atol = 2e-3 if secure else 1e-6
    plain = _run(3, secure_aggregation=secure)
    # FedAvg: the new global weights are the weighted mean: 3 rounds * 0.0325.
    np.testing.assert_allclose(plain[0], np.full((3, 2), 0.0975), atol=atol)
    momentum = _run(3, server_optimizer="fedavgm", server_momentum=0.5, server_lr=0.8, secure_aggregation=secure)
    expected = _fedavgm_reference(3, 0.8, 0.5, 0.0325)  # 0.8 * (0.0325 + 0.04875 + 0.056875) = 0.1105
    assert expected == pytest.approx(0.1105)
    np.testing.assert_allclose(momentum[0], np.full((3, 2), expected), atol=atol)
    np.testing.assert_allclose(momentum[1], np.full(2, 0.1 + expected), atol=atol)


def test_fedadam_moves_every_weight_by_about_its_learning_rate_per_round() -> None:
    # With a constant pseudo-gradient, Adam's normalised step is ~eta per round whatever the step's size.
    out = _run(2, server_optimizer="fedadam", server_lr=0.001)
    assert np.all(out[0] > 0.0) and np.all(out[0] < 0.005)
    assert not np.allclose(out[0], 2 * 0.0325, atol=1e-3)  # not the FedAvg aggregate


def test_the_default_is_plain_fedavg_and_inconsistent_settings_are_refused() -> None:
    config = FederationConfig()
    assert config.server_optimizer == "fedavg" and config.server_settings() == (1.0, 0.0)
    assert FederationConfig(server_optimizer="fedavgm").server_settings() == (1.0, 0.9)
    with pytest.raises(ValidationError, match="server_momentum/server_lr need a server optimizer"):
        FederationConfig(server_momentum=0.9)
    with pytest.raises(ValidationError, match="cannot be combined with robust"):
        FederationConfig(server_optimizer="fedavgm", robust=RobustConfig())
    with pytest.raises(ValidationError, match="cannot be combined with member_dp"):
        FederationConfig(server_optimizer="fedadam", member_dp=MemberDPConfig(epsilon=1.0))
    with pytest.raises(ValidationError, match="strategy='fedprox'"):
        FederationConfig(server_optimizer="fedavgm", strategy="fedprox", proximal_mu=0.1)
