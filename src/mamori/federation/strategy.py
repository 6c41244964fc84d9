"""Flower strategies as mamori uses them: Flower's FedAvg/FedProx/FedAvgM/FedAdam/FedYogi plus a quorum check."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedProx, FedYogi, Strategy

from mamori.federation.clientapp import NUM_EXAMPLES_KEY
from mamori.federation.config import FederationConfig

__all__ = ["QuorumCheck", "build_strategy"]

#: Called with ("train" | "evaluate", server round, replies) before aggregation; raises to stop the run.
QuorumCheck = Callable[[str, int, list[Message]], None]


class _QuorumMixin:
    """Check that enough members answered before Flower aggregates."""

    quorum_check: QuorumCheck | None = None

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        if self.quorum_check is not None:
            self.quorum_check("train", server_round, replies)
        return super().aggregate_train(server_round, replies)  # type: ignore[misc, no-any-return]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        if self.quorum_check is not None:
            self.quorum_check("evaluate", server_round, replies)
        return super().aggregate_evaluate(server_round, replies)  # type: ignore[misc, no-any-return]


class _FedAvg(_QuorumMixin, FedAvg):
    """Flower's FedAvg with mamori's quorum check."""


class _FedProx(_QuorumMixin, FedProx):
    """Flower's FedProx with mamori's quorum check."""


class _FedAvgM(_QuorumMixin, FedAvgM):
    """Flower's FedAvgM (server momentum) with mamori's quorum check."""


class _FedAdam(_QuorumMixin, FedAdam):
    """Flower's FedAdam with mamori's quorum check."""


class _FedYogi(_QuorumMixin, FedYogi):
    """Flower's FedYogi with mamori's quorum check."""


def build_strategy(
    config: FederationConfig,
    quorum_check: QuorumCheck | None = None,
    *,
    member_name: Callable[[int], str] | None = None,
    on_update_check: Callable[..., None] | None = None,
) -> Strategy:
    """Build the Flower strategy ``config`` names.

    Parameters
    ----------
    config : FederationConfig
        Strategy name, ``proximal_mu``, sampling fractions and minimum node counts.
    quorum_check : callable or None, default=None
        Called before each aggregation with ``(phase, server_round, replies)``; it raises
        ``FederationError`` when too few members answered.
    member_name : callable or None, default=None
        With ``config.robust``: maps a node id to the member's name for the update check.
    on_update_check : callable or None, default=None
        With ``config.robust``: receives each training round's ``UpdateCheckReport``.

    Returns
    -------
    flwr.serverapp.strategy.Strategy
        A ``FedAvg`` or ``FedProx`` (Flower's own aggregation, weighted by ``num-examples``), or with
        ``config.server_optimizer`` Flower's ``FedAvgM``, ``FedAdam`` or ``FedYogi`` (the same weighted
        mean, then a server optimiser step).

    Notes
    -----
    Later aggregation modes (robust aggregation, differential-privacy wrappers) plug in here: each
    is a Flower strategy (``FedTrimmedAvg``, ``FedMedian``, ``Krum``, ``Bulyan``,
    ``DifferentialPrivacyClientSideFixedClipping`` ...) taking the same sampling arguments.
    """
    common = {
        "fraction_train": config.fraction_train,
        "fraction_evaluate": config.fraction_evaluate,
        "min_train_nodes": config.min_train_nodes,
        "min_evaluate_nodes": config.min_evaluate_nodes,
        "min_available_nodes": config.min_available_nodes,
        "weighted_by_key": NUM_EXAMPLES_KEY,
    }
    if config.robust is not None:
        from mamori.federation.robust import build_robust_strategy

        robust = build_robust_strategy(
            config, common, _QuorumMixin, member_name=member_name, on_update_check=on_update_check
        )
        robust.quorum_check = quorum_check  # type: ignore[attr-defined]
        return robust
    strategy: _FedAvg | _FedProx | _FedAvgM | _FedAdam | _FedYogi
    server_lr, server_momentum = config.server_settings()
    if config.server_optimizer == "fedavgm":
        strategy = _FedAvgM(server_learning_rate=server_lr, server_momentum=server_momentum, **common)  # type: ignore[arg-type]
    elif config.server_optimizer in ("fedadam", "fedyogi"):
        cls = _FedAdam if config.server_optimizer == "fedadam" else _FedYogi
        strategy = cls(eta=server_lr, beta_1=server_momentum, **common)  # type: ignore[arg-type]
    elif config.strategy == "fedprox":
        strategy = _FedProx(proximal_mu=config.proximal_mu, **common)  # type: ignore[arg-type]
    else:
        strategy = _FedAvg(**common)  # type: ignore[arg-type]
    strategy.quorum_check = quorum_check
    return strategy
