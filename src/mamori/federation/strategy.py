"""Flower strategies as mamori uses them: Flower's FedAvg/FedProx/FedAvgM/FedAdam/FedYogi plus a quorum check.

SCAFFOLD's server-side control variate (``FederationConfig.client_algorithm="scaffold"``) layers over any of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedProx, FedYogi, Strategy

from mamori.errors import FederationError
from mamori.federation.clientapp import CONTROL_KEY, NUM_EXAMPLES_KEY
from mamori.federation.config import FederationConfig

__all__ = ["QuorumCheck", "build_strategy", "schedule_train_config"]

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


class _ScaffoldMixin:
    """SCAFFOLD's server side (Karimireddy et al. 2020) around any FedAvg-family strategy.

    Each train message also carries the server's control variate ``c`` (ArrayRecord ``"control"``, zeros in the
    first round); each reply carries the member's ``c_i(new) - c_i(old)``, which is taken out of the reply before
    the wrapped strategy aggregates the weights as usual. Then ``c += (sampled / nodes) * sum_i w_i delta_i``
    with ``w_i`` the members' example shares (SCAFFOLD's ``|S| / N`` mean, weighted like FedAvg's mean).
    """

    control: list[np.ndarray] | None = None
    _num_nodes: int = 0

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        if self.control is None:
            self.control = [np.zeros_like(a, dtype=np.float32) for a in arrays.to_numpy_ndarrays()]
        self._num_nodes = len(list(grid.get_node_ids()))
        record = ArrayRecord([np.ascontiguousarray(c) for c in self.control])
        for message in messages:  # Flower's messages of one round share one RecordDict
            message.content[CONTROL_KEY] = record
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        deltas: list[list[np.ndarray]] = []
        examples: list[float] = []
        for reply in replies:
            if reply.has_error():
                continue
            record = reply.content.array_records.get(CONTROL_KEY)
            if record is None:
                raise FederationError(
                    f"SCAFFOLD round {server_round}: node {reply.metadata.src_node_id} replied without its "
                    f"control-variate delta ({CONTROL_KEY!r} ArrayRecord); every member must run fit_scaffold."
                )
            deltas.append(record.to_numpy_ndarrays())
            metrics = next(iter(reply.content.metric_records.values()), None)
            examples.append(float(metrics[NUM_EXAMPLES_KEY]) if metrics is not None else 0.0)
            del reply.content[CONTROL_KEY]  # the wrapped strategy expects exactly one ArrayRecord per reply
        arrays, metrics_out = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        if arrays is not None and deltas and self.control is not None and sum(examples) > 0:
            share = np.asarray(examples, dtype=np.float64) / sum(examples)
            scale = len(deltas) / max(self._num_nodes, len(deltas))
            self.control = [
                np.asarray(c + scale * sum(w * d[i] for w, d in zip(share, deltas, strict=True)), dtype=np.float32)
                for i, c in enumerate(self.control)
            ]
        return arrays, metrics_out


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
    cls: type[_QuorumMixin]
    kwargs: dict[str, object] = dict(common)
    server_lr, server_momentum = config.server_settings()
    if config.server_optimizer == "fedavgm":
        cls, kwargs["server_learning_rate"], kwargs["server_momentum"] = _FedAvgM, server_lr, server_momentum
    elif config.server_optimizer in ("fedadam", "fedyogi"):
        cls = _FedAdam if config.server_optimizer == "fedadam" else _FedYogi
        kwargs["eta"], kwargs["beta_1"] = server_lr, server_momentum
    elif config.strategy == "fedprox":
        cls, kwargs["proximal_mu"] = _FedProx, config.proximal_mu
    else:
        cls = _FedAvg
    if config.client_algorithm == "scaffold":
        cls = _scaffold_class(cls)
    strategy = cls(**kwargs)
    strategy.quorum_check = quorum_check
    return strategy  # type: ignore[return-value]


def schedule_train_config(strategy: Strategy, config: FederationConfig, *, round_offset: int = 0) -> Strategy:
    """Make ``strategy`` add each round's :meth:`FederationConfig.round_train_config` to its train messages.

    Parameters
    ----------
    strategy : flwr.serverapp.strategy.Strategy
        The outermost strategy of the run (after any DP wrapper), so every wrapped ``configure_train`` sees it.
    config : FederationConfig
        ``lr_schedule``, ``lr_floor`` and ``num_rounds``.
    round_offset : int, default=0
        Rounds completed before this run (a resumed deployment run): round ``r`` of this run is round
        ``round_offset + r`` of the schedule.

    Returns
    -------
    flwr.serverapp.strategy.Strategy
        ``strategy`` itself; unchanged for ``lr_schedule="constant"``.
    """
    if not config.round_train_config(1):
        return strategy
    configure = strategy.configure_train

    def configure_train(server_round: int, arrays: ArrayRecord, train_config: ConfigRecord, grid: Grid) -> Any:
        # Flower's strategies write "server-round" into the run's one train ConfigRecord each round; the factor
        # is overwritten the same way.
        for key, value in config.round_train_config(round_offset + server_round).items():
            train_config[key] = value
        return configure(server_round, arrays, train_config, grid)

    strategy.configure_train = configure_train  # type: ignore[method-assign]
    return strategy


@functools.cache
def _scaffold_class(cls: type[_QuorumMixin]) -> type[_QuorumMixin]:
    """``cls`` with SCAFFOLD's control variate layered over its aggregation (one class per strategy)."""
    return type(f"_Scaffold{cls.__name__}", (_ScaffoldMixin, cls), {"__doc__": f"SCAFFOLD over {cls.__name__}."})
