"""Member-level differential privacy on the plain (Message API) path: Flower's client-side fixed clipping.

Each member clips its update (local minus global weights) to ``clipping_norm`` in Flower's
``fixedclipping_mod`` (attached to the train handler only); the coordinator averages the clipped
updates with equal weights and adds Gaussian noise of standard deviation
``noise_multiplier * clipping_norm / min_train_nodes`` (Flower's
``DifferentialPrivacyClientSideFixedClipping``). Under secure aggregation the same happens through
Flower's older API (see :mod:`mamori.federation.secagg`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, Strategy

from mamori.federation.config import FederationConfig
from mamori.federation.privacy import member_dp_noise

__all__ = ["DP_WEIGHT_KEY", "member_dp_train_mods", "wrap_member_dp"]

#: Metric every member reports as 1 under member-level DP: the aggregate is an unweighted mean.
DP_WEIGHT_KEY = "member_dp_weight"


def _uniform_weight_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Add ``member_dp_weight = 1`` to a train reply (equal weights keep the sensitivity at C / n)."""
    reply = call_next(message, context)
    if not reply.has_error():
        for record in reply.content.metric_records.values():
            record[DP_WEIGHT_KEY] = 1
    return reply


def member_dp_train_mods(config: FederationConfig) -> list[Mod]:
    """Client mods for the train handler under member-level DP (empty without it).

    Parameters
    ----------
    config : FederationConfig
        The run's config.

    Returns
    -------
    list of Flower mods
        ``[uniform weight, fixedclipping_mod]`` when ``config.member_dp`` is set.
    """
    if config.member_dp is None:
        return []
    from flwr.clientapp.mod import fixedclipping_mod

    return [_uniform_weight_mod, fixedclipping_mod]


class _MemberDP(DifferentialPrivacyClientSideFixedClipping):
    """Flower's wrapper, tolerant of failed members (left out, as on the plain path) and quorum-aware."""

    @property
    def min_train_nodes(self) -> int:
        return int(self.strategy.min_train_nodes)  # type: ignore[attr-defined]

    @property
    def min_evaluate_nodes(self) -> int:
        return int(self.strategy.min_evaluate_nodes)  # type: ignore[attr-defined]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        quorum_check = getattr(self.strategy, "quorum_check", None)
        if quorum_check is not None:
            quorum_check("train", server_round, replies)  # raises below min_train_nodes, naming the failures
        inner: Any = self.strategy
        key = inner.weighted_by_key
        inner.weighted_by_key = DP_WEIGHT_KEY  # equal weights for training only (evaluation stays weighted)
        try:
            return super().aggregate_train(server_round, [r for r in replies if not r.has_error()])
        finally:
            inner.weighted_by_key = key


def wrap_member_dp(strategy: Strategy, config: FederationConfig) -> Strategy:
    """Wrap ``strategy`` in Flower's client-side fixed-clipping DP when ``config.member_dp`` is set.

    Parameters
    ----------
    strategy : flwr.serverapp.strategy.Strategy
        The FedAvg/FedProx strategy from ``build_strategy`` (training is aggregated with equal weights).
    config : FederationConfig
        The run's config.

    Returns
    -------
    flwr.serverapp.strategy.Strategy
        ``strategy`` unchanged without member-level DP, else the DP wrapper around it.
    """
    if config.member_dp is None:
        return strategy
    return _MemberDP(
        strategy,
        noise_multiplier=member_dp_noise(config.member_dp, config.num_rounds),
        clipping_norm=config.member_dp.clipping_norm,
        num_sampled_clients=config.min_train_nodes,  # noise for the smallest quorum: conservative
    )
