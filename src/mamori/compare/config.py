"""Settings of a local / federated / centralized comparison."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mamori.federation import RecordDPConfig

__all__ = ["ComparisonConfig"]


class ComparisonConfig(BaseModel):
    """How the three training regimes are run and judged.

    Parameters
    ----------
    rounds : int, default=10
        Federated rounds.
    local_epochs : int, default=1
        Epochs each member trains per round (and the number of passes is matched for local-only and
        centralized training: ``rounds * local_epochs`` epochs).
    strategy : {"fedavg", "fedprox"}, default="fedavg"
        Flower strategy for the federated model.
    proximal_mu : float, default=0.01
        FedProx proximal term (only with ``strategy="fedprox"``).
    target_fpr : float, default=0.005
        False-positive rate each bank calibrates its own threshold to, on its own benign calibration events.
    hidden : tuple of int, default=(64, 32)
        Hidden layer sizes of the attack classifier.
    dp_hidden : tuple of int, default=(32, 16)
        Hidden layer sizes of the federated classifier when it trains with ``record_dp``. Narrower than
        ``hidden`` on purpose: DP-SGD adds noise to every parameter, so half the parameters carry about
        half the total noise for the same clipped signal. On the validation consortium (``--seed 2``) at
        epsilon = 8, averaged over five federation seeds, the 32-16 network lost 2.75 points of mean PR-AUC
        against no DP, the 64-32 one 4.1 (one seed in five collapsed to 0.91); see docs/privacy.md. Without
        DP the wider network is kept.
    max_benign_train : int, default=200_000
        Benign training events kept per bank (a seeded random sample); every attack event is kept. Bounds the
        training time without dropping any evidence of attack.
    secure_aggregation : bool, default=True
        Run the federated regime with Flower's SecAgg+: the coordinator only ever sees the sum of the members'
        masked updates (see docs/privacy.md). Off, members' individual updates reach the coordinator.
    record_dp : RecordDPConfig or None, default=None
        Train the federated model with customer-level DP-SGD at every member (budget ``record_dp.epsilon`` for the
        whole run, ``record_dp.delta`` defaulting to 1 / the member's training rows); the local-only and
        centralized regimes stay without DP (they are the references). None: no record-level DP.
    seed : int, default=1
        Seed of every random choice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rounds: int = Field(default=10, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    strategy: str = Field(default="fedavg", pattern="^(fedavg|fedprox)$")
    proximal_mu: float = Field(default=0.01, ge=0.0)
    target_fpr: float = Field(default=0.005, gt=0.0, lt=1.0)
    hidden: tuple[int, ...] = (64, 32)
    dp_hidden: tuple[int, ...] = (32, 16)
    max_benign_train: int = Field(default=200_000, ge=100)
    batch_size: int = Field(default=512, ge=8)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    secure_aggregation: bool = True
    record_dp: RecordDPConfig | None = None
    seed: int = 1
