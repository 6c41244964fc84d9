"""Settings of one federated training run."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mamori.federation.privacy import MemberDPConfig, SecureAggregationConfig
from mamori.federation.robust import RobustConfig
from mamori.federation.schedule import LR_FACTOR_KEY, LRSchedule, check_schedule, lr_factor

__all__ = ["FederationConfig"]


class FederationConfig(BaseModel):
    """How a federated training run is driven.

    Parameters
    ----------
    strategy : {"fedavg", "fedprox"}, default="fedavg"
        Aggregation strategy, taken from Flower's ``flwr.serverapp.strategy``.
    proximal_mu : float, default=0.0
        Weight of FedProx's proximal term ``mu/2 * ||w - w_global||^2``. Must be > 0 for
        ``"fedprox"`` and 0 for ``"fedavg"``.
    num_rounds : int, default=5
        Number of federated rounds (train + federated evaluation each).
    local_epochs : int, default=1
        Epochs each member trains locally per round (sent to members as ``config["local_epochs"]``).
    fraction_train : float, default=1.0
        Fraction of members sampled for training each round (at least ``min_train_nodes``).
    fraction_evaluate : float, default=1.0
        Fraction of members sampled for federated evaluation each round; 0 disables it.
    min_train_nodes : int, default=2
        Members that must answer a training round successfully; fewer raises ``FederationError``.
    min_evaluate_nodes : int, default=1
        Members that must answer an evaluation round successfully; fewer raises ``FederationError``.
    min_available_nodes : int, default=2
        Members that must be connected before a round starts.
    round_timeout_s : float, default=600.0
        Seconds the coordinator waits for replies in each train or evaluate exchange. A member that
        has not answered by then is counted as failed for that exchange.
    evaluate_initial : bool, default=True
        Also run a federated evaluation of the initial weights (reported as round 0).
    max_parallel_members : int, default=1
        In-process runtime only: how many members train at the same time (threads). 1 is
        deterministic and avoids oversubscribing small machines.
    seed : int, default=1
        Seeds member sampling and the per-round, per-member seed passed as ``config["seed"]``.
    trainer_config : dict of str to int, float, str or bool, default={}
        Extra settings forwarded unchanged to every member's ``fit`` and ``evaluate`` (e.g. a
        learning rate). Keys must not collide with the reserved keys ``server_round``,
        ``local_epochs``, ``proximal_mu``, ``seed``, ``lr_factor``.
    robust : RobustConfig or None, default=None
        Robust aggregation (Flower's trimmed mean, median, Krum, Multi-Krum, Bulyan), update
        clipping and the per-round update check; None aggregates with plain ``strategy``.
        ``proximal_mu`` still applies (FedProx's term is computed by the members).
    secure_aggregation : bool, default=False
        Aggregate with Flower's SecAgg+: the coordinator only ever sees the (weighted) sum of the
        members' weights, never one member's. Tolerates members dropping out mid-round down to
        ``min_train_nodes``. Not combinable with ``robust`` (robust rules need each update).
    secagg : SecureAggregationConfig, default=SecureAggregationConfig()
        SecAgg+ protocol settings (shares, reconstruction threshold, quantization).
    member_dp : MemberDPConfig or None, default=None
        Member-level differential privacy: each member's update is clipped on the member and
        Gaussian noise is added to the aggregate (Flower's client-side fixed-clipping DP wrapper).
        Works with and without ``secure_aggregation``; not combinable with ``robust``.
    server_optimizer : {"fedavg", "fedavgm", "fedadam", "fedyogi"}, default="fedavg"
        What the coordinator does with the members' weighted mean (Flower's ``FedAvg``, ``FedAvgM``,
        ``FedAdam``, ``FedYogi``). ``"fedavg"`` takes the mean as the new global weights. The others treat
        ``global - mean`` as a pseudo-gradient and take a server optimiser step: ``"fedavgm"`` SGD with
        momentum (Hsu et al. 2019: ``v = momentum * v + (global - mean)``, ``global -= server_lr * v``),
        ``"fedadam"`` / ``"fedyogi"`` adaptive steps (Reddi et al. 2021). They work on the aggregate only,
        so they compose with ``secure_aggregation`` (SecAgg+ yields the mean; the step follows). Not
        combinable with ``strategy="fedprox"``, ``robust`` or ``member_dp``.
    server_momentum : float or None, default=None
        ``"fedavgm"``: the momentum factor (None: 0.9); ``"fedadam"``/``"fedyogi"``: ``beta_1``
        (None: 0.9). Must stay None for ``"fedavg"``.
    server_lr : float or None, default=None
        Server learning rate: ``"fedavgm"`` (None: 1.0), ``"fedadam"``/``"fedyogi"`` ``eta`` (None: 0.1,
        Flower's default). Must stay None for ``"fedavg"``.
    client_algorithm : {"plain", "scaffold"}, default="plain"
        How members correct their local steps. ``"plain"``: no correction. ``"scaffold"``: SCAFFOLD control
        variates (Karimireddy et al. 2020) against client drift on skewed splits: every training message
        carries the server's control variate ``c`` next to the weights (ArrayRecord ``"control"``); each member
        adds ``c - c_i`` to every mini-batch gradient before its optimiser step, keeps the mean raw gradient of
        its round as its new ``c_i`` and returns ``c_i(new) - c_i(old)`` with its weights; the server adds the
        example-weighted mean of these deltas, scaled by the share of members sampled, to ``c``. Twice the
        traffic per round. Every trainer must implement ``fit_scaffold`` (:class:`EstimatorTrainer` does).
        Composes with ``server_optimizer`` and with ``secure_aggregation`` (under SecAgg+ each member's delta is
        masked with its weights, so the coordinator only learns the weighted sum of the deltas); not combinable
        with ``strategy="fedprox"``, ``robust`` or ``member_dp`` (their wrappers see one ArrayRecord per reply).
    lr_schedule : {"constant", "cosine", "linear"}, default="constant"
        How the members' learning rate changes over the rounds (:func:`~mamori.federation.lr_factor`): from the
        member's own rate in round 1 down to ``rate * lr_floor`` in round ``num_rounds``, half a cosine or a straight
        line. The coordinator computes each round's factor and sends it in the train config as ``lr_factor``
        (only when not ``"constant"``); :class:`EstimatorTrainer` multiplies its estimator's learning rate by it, and
        a custom :class:`LocalTrainer` should do the same. Works with every aggregation mode, SecAgg+ and the
        deployment alike.
    lr_floor : float, default=1.0
        The last round's factor, in ``(0, 1]``. Must stay 1.0 with ``lr_schedule="constant"``.
    tail_average : int, default=0
        Server-side tail averaging: the run's model (``FederationResult.arrays``, the deployment's published
        model) is the uniform mean of the global weights after each of the last ``tail_average`` rounds. The
        members and the rounds are unchanged (every round still starts from the last global weights); 0 or 1:
        off, the last round's weights. At most ``num_rounds``. It is post-processing of the global weights, so
        it composes with every other setting (a member-level DP guarantee carries over unchanged).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    proximal_mu: float = Field(default=0.0, ge=0.0)
    num_rounds: int = Field(default=5, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    fraction_train: float = Field(default=1.0, gt=0.0, le=1.0)
    fraction_evaluate: float = Field(default=1.0, ge=0.0, le=1.0)
    min_train_nodes: int = Field(default=2, ge=1)
    min_evaluate_nodes: int = Field(default=1, ge=0)
    min_available_nodes: int = Field(default=2, ge=1)
    round_timeout_s: float = Field(default=600.0, gt=0.0)
    evaluate_initial: bool = True
    max_parallel_members: int = Field(default=1, ge=1)
    seed: int = 1
    trainer_config: dict[str, int | float | str | bool] = Field(default_factory=dict)
    robust: RobustConfig | None = None
    secure_aggregation: bool = False
    secagg: SecureAggregationConfig = SecureAggregationConfig()
    member_dp: MemberDPConfig | None = None
    server_optimizer: Literal["fedavg", "fedavgm", "fedadam", "fedyogi"] = "fedavg"
    server_momentum: float | None = Field(default=None, ge=0.0, lt=1.0)
    server_lr: float | None = Field(default=None, gt=0.0)
    client_algorithm: Literal["plain", "scaffold"] = "plain"
    lr_schedule: LRSchedule = "constant"
    lr_floor: float = Field(default=1.0, gt=0.0, le=1.0)
    tail_average: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.strategy == "fedprox" and self.proximal_mu <= 0.0:
            raise ValueError(
                "FederationConfig: strategy 'fedprox' needs proximal_mu > 0 (got 0.0); "
                "set proximal_mu (e.g. 0.01) or use strategy 'fedavg'."
            )
        if self.strategy == "fedavg" and self.proximal_mu != 0.0:
            raise ValueError(
                f"FederationConfig: proximal_mu={self.proximal_mu} has no effect with strategy 'fedavg'; "
                "use strategy 'fedprox' or set proximal_mu to 0."
            )
        reserved = {"server_round", "local_epochs", "proximal_mu", "seed", LR_FACTOR_KEY} & set(self.trainer_config)
        if reserved:
            raise ValueError(
                f"FederationConfig: trainer_config uses reserved key(s) {sorted(reserved)}; "
                "set them through the matching FederationConfig field instead."
            )
        if self.robust is not None and (self.secure_aggregation or self.member_dp is not None):
            raise ValueError(
                "FederationConfig: robust aggregation cannot be combined with secure_aggregation or member_dp "
                "(robust rules inspect each member's update, which SecAgg+ hides and member-level DP noise is "
                "calibrated for the plain mean); choose one - see docs/privacy.md, 'Secure vs robust aggregation'."
            )
        self._check_server_optimizer()
        self._check_client_algorithm()
        self._check_schedule()
        return self

    def _check_schedule(self) -> None:
        try:
            check_schedule(self.lr_schedule, self.lr_floor, self.tail_average, self.num_rounds)
        except ValueError as exc:
            raise ValueError(f"FederationConfig: {exc}") from None

    def _modes_on(self) -> list[str]:
        """The aggregation-changing modes that are on, named as the settings are: FedProx, robust, member-level DP."""
        modes = [
            ("strategy='fedprox'", self.strategy == "fedprox"),
            ("robust", self.robust is not None),
            ("member_dp", self.member_dp is not None),
        ]
        return [what for what, on in modes if on]

    def _check_client_algorithm(self) -> None:
        if self.client_algorithm == "plain":
            return
        # SCAFFOLD adds a second ArrayRecord to every train message and reply: Flower's DP and robust wrappers
        # expect exactly one, and member-level DP would clip and noise the control variate with the weights;
        # FedProx is another drift remedy with its own Flower strategy. Under SecAgg+ the control variate rides
        # in the one masked vector instead (mamori.federation.secagg), so secure_aggregation is allowed.
        clashes = self._modes_on()
        if clashes:
            raise ValueError(
                f"FederationConfig: client_algorithm={self.client_algorithm!r} cannot be combined with "
                f"{', '.join(clashes)}; use client_algorithm='plain' with them (see docs/federation.md, 'SCAFFOLD')."
            )

    def _check_server_optimizer(self) -> None:
        name = self.server_optimizer
        if name == "fedavg":
            if self.server_momentum is not None or self.server_lr is not None:
                raise ValueError(
                    "FederationConfig: server_momentum/server_lr need a server optimizer; set server_optimizer to "
                    "'fedavgm', 'fedadam' or 'fedyogi', or leave them unset."
                )
            return
        # The server step is computed from the coordinator's previous global weights and the plain mean: FedProx
        # needs its own Flower strategy, robust rules replace the mean, and member-level DP's noise is calibrated
        # for the mean itself (a step of server_lr * momentum-sum would rescale the noise and the sensitivity).
        clashes = self._modes_on()
        if clashes:
            raise ValueError(
                f"FederationConfig: server_optimizer={name!r} cannot be combined with {', '.join(clashes)}; "
                "use server_optimizer='fedavg' with them (see docs/federation.md, 'Server optimizer')."
            )

    def round_train_config(self, server_round: int) -> dict[str, float]:
        """What the coordinator adds to round ``server_round``'s train config: the members' learning-rate factor.

        Parameters
        ----------
        server_round : int
            The round, from 1 (in the deployment: counted over resumed runs, up to ``num_rounds``).

        Returns
        -------
        dict of str to float
            ``{"lr_factor": lr_factor(lr_schedule, server_round, num_rounds, lr_floor)}``; empty for
            ``lr_schedule="constant"`` (members keep their own rate, and the messages stay as they were).
        """
        if self.lr_schedule == "constant":
            return {}
        return {LR_FACTOR_KEY: lr_factor(self.lr_schedule, server_round, self.num_rounds, self.lr_floor)}

    def server_settings(self) -> tuple[float, float]:
        """The server optimizer's learning rate and momentum, with its defaults filled in.

        Returns
        -------
        tuple of (float, float)
            ``(server_lr, server_momentum)``: ``(1.0, 0.0)`` for ``"fedavg"``; ``server_lr`` default 1.0
            (``"fedavgm"``) or 0.1 (``"fedadam"``, ``"fedyogi"``); ``server_momentum`` default 0.9.
        """
        if self.server_optimizer == "fedavg":
            return 1.0, 0.0
        default_lr = 1.0 if self.server_optimizer == "fedavgm" else 0.1
        lr = default_lr if self.server_lr is None else float(self.server_lr)
        momentum = 0.9 if self.server_momentum is None else float(self.server_momentum)
        return lr, momentum
