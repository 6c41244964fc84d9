"""Robust aggregation: Flower's Byzantine-robust strategies plus update clipping and the per-round update check.

A :class:`RobustConfig` (the ``robust`` field of :class:`~mamori.federation.FederationConfig`) picks
the aggregation rule - Flower's ``FedAvg``, ``FedTrimmedAvg``, ``FedMedian``, ``Krum``, ``MultiKrum``
or ``Bulyan`` from ``flwr.serverapp.strategy`` - and what happens to the members' updates before the
rule sees them, in this order:

1. **check** (:func:`~mamori.federation.update_check.check_updates`): norms and cosines flag
   anomalous members; the flags go to the ``on_update_check`` callback of ``run_federation`` (the
   coordinator writes them to the audit log) and, with ``check_action="exclude"``, the flagged
   updates are left out of the round;
2. **clip**: each update ``w_i - g`` is scaled down to at most ``clip_norm`` (``clip="fixed"``) or
   ``clip_factor`` times the round's median update norm (``clip="adaptive"``);
3. **aggregate** with the chosen Flower rule.

All three need the individual updates, which secure aggregation (SecAgg+) hides from the
coordinator; :func:`recommended_robust_config` gives the default per deployment and
:attr:`RobustConfig.needs_individual_updates` tells whether a mode can run under SecAgg+.
Members can clip their own update before it is masked with :class:`ClippedTrainer`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Bulyan, FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum
from pydantic import BaseModel, ConfigDict, Field

from mamori.errors import FederationError
from mamori.federation.trainer import ConfigValue, LocalTrainer
from mamori.federation.update_check import UpdateCheckReport, check_updates, flatten

if TYPE_CHECKING:
    from mamori.federation.config import FederationConfig

__all__ = [
    "AGGREGATIONS",
    "ClippedTrainer",
    "RobustConfig",
    "UpdateCheckCallback",
    "build_robust_strategy",
    "clip_update",
    "recommended_robust_config",
]

logger = logging.getLogger(__name__)

#: Receives each training round's :class:`UpdateCheckReport` (before aggregation).
UpdateCheckCallback = Callable[[UpdateCheckReport], None]

Aggregation = Literal["fedavg", "trimmed_mean", "median", "krum", "multikrum", "bulyan"]

#: Aggregation rule -> the Flower strategy class that implements it.
AGGREGATIONS: dict[str, type[FedAvg]] = {
    "fedavg": FedAvg,
    "trimmed_mean": FedTrimmedAvg,
    "median": FedMedian,
    "krum": Krum,
    "multikrum": MultiKrum,
    "bulyan": Bulyan,
}

_STALE_MEMORY = 3  # earlier global models a member may replay and still be caught as "stale"


class RobustConfig(BaseModel):
    """How the coordinator defends the aggregate against poisoned updates.

    Parameters
    ----------
    aggregation : {"fedavg", "trimmed_mean", "median", "krum", "multikrum", "bulyan"}, default="trimmed_mean"
        The rule (Flower's ``FedAvg``, ``FedTrimmedAvg``, ``FedMedian``, ``Krum``, ``MultiKrum``,
        ``Bulyan``). ``fedavg`` weights by example counts; the others weigh members equally
        (``multikrum`` averages its selection weighted by example counts).
    trim_beta : float, default=0.3
        ``trimmed_mean``: share cut off each tail per coordinate, in [0, 0.5). With 10 members 0.3
        drops the 3 largest and 3 smallest values.
    assumed_malicious : int, default=3
        ``krum``/``multikrum``/``bulyan``: the number of malicious members ``f`` the rule is sized
        for. Bulyan needs ``4 f + 3 <= n`` updates; with fewer it runs with the largest ``f`` that fits
        (a warning is logged), e.g. ``f = 1`` for 7 to 10 members.
    multikrum_select : int or None, default=None
        ``multikrum``: updates averaged; None means ``replies - assumed_malicious``.
    clip : {"none", "fixed", "adaptive"}, default="adaptive"
        Server-side clipping of each update ``w_i - g`` before aggregation: to ``clip_norm``
        (``"fixed"``) or to ``clip_factor`` times the round's median update norm (``"adaptive"``).
    clip_norm : float, default=1.0
        L2 bound of ``"fixed"`` clipping.
    clip_factor : float, default=1.0
        Multiple of the median norm used by ``"adaptive"`` clipping.
    check : bool, default=True
        Run the per-round update check (norms and cosines) and report flagged members.
    check_action : {"exclude", "log"}, default="exclude"
        ``"exclude"`` leaves flagged updates out of the round; ``"log"`` only reports them. Ignored
        when ``check`` is False.
    norm_ratio : float, default=3.0
        Check: flag an update longer than ``norm_ratio`` times the round's median norm.
    min_norm_ratio : float, default=0.05
        Check: flag an update shorter than this share of the median norm (no training done).
    min_cosine : float, default=0.0
        Check: flag an update whose cosine to the coordinate-wise median update is below this.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    aggregation: Aggregation = "trimmed_mean"
    trim_beta: float = Field(default=0.3, ge=0.0, lt=0.5)
    assumed_malicious: int = Field(default=3, ge=0)
    multikrum_select: int | None = Field(default=None, ge=1)
    clip: Literal["none", "fixed", "adaptive"] = "adaptive"
    clip_norm: float = Field(default=1.0, gt=0.0)
    clip_factor: float = Field(default=1.0, gt=0.0)
    check: bool = True
    check_action: Literal["exclude", "log"] = "exclude"
    norm_ratio: float = Field(default=3.0, gt=1.0)
    min_norm_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_cosine: float = Field(default=0.0, ge=-1.0, le=1.0)

    @property
    def needs_individual_updates(self) -> bool:
        """True when the mode must see each member's update (so it cannot run under SecAgg+)."""
        return self.aggregation != "fedavg" or self.clip != "none" or self.check

    @classmethod
    def plain(cls) -> RobustConfig:
        """FedAvg with no clipping and no check (what a run without ``robust`` does, plus nothing)."""
        return cls(aggregation="fedavg", clip="none", check=False)


def recommended_robust_config(
    deployment: Literal["coordinator_sees_updates", "secure_aggregation"],
) -> RobustConfig | None:
    """The default robust mode for a deployment.

    Parameters
    ----------
    deployment : {"coordinator_sees_updates", "secure_aggregation"}
        Whether the coordinator receives each member's update in the clear (TLS to the coordinator,
        no masking), or only their sum (SecAgg+).

    Returns
    -------
    RobustConfig or None
        ``coordinator_sees_updates``: ``RobustConfig()`` - the update check excluding flagged
        members, adaptive clipping to the median norm, and a 30% trimmed mean. ``secure_aggregation``:
        None (FedAvg on the masked sum - no per-update rule can run); honest members clip their own
        update before masking (:class:`ClippedTrainer`, or ``FederationConfig.member_dp``'s clipping).

    Raises
    ------
    ValueError
        For another deployment name.

    Notes
    -----
    Under SecAgg+ nothing the coordinator does can single out a poisoned update: client-side
    clipping bounds only members that run the unmodified client. See ``docs/robustness.md``.
    """
    if deployment == "coordinator_sees_updates":
        return RobustConfig()
    if deployment == "secure_aggregation":
        return None
    raise ValueError(
        f"recommended_robust_config: deployment must be 'coordinator_sees_updates' or 'secure_aggregation', "
        f"got {deployment!r}."
    )


def clip_update(update: np.ndarray, max_norm: float) -> tuple[np.ndarray, float]:
    """Scale ``update`` down to L2 norm ``max_norm`` if it is longer; return it and the factor applied."""
    norm = float(np.linalg.norm(update))
    if norm <= max_norm or norm == 0.0:
        return update, 1.0
    factor = max_norm / norm
    return update * factor, factor


def _unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    offset = 0
    for a in like:
        out.append(vector[offset : offset + a.size].reshape(a.shape).astype(a.dtype, copy=False))
        offset += a.size
    return out


class _RobustMixin:
    """Check, exclude and clip the updates, then hand the replies to Flower's rule."""

    robust: RobustConfig = RobustConfig()
    proximal_mu: float = 0.0
    member_name: Callable[[int], str] | None = None
    on_update_check: UpdateCheckCallback | None = None
    min_train_nodes: int
    _global: list[np.ndarray] | None = None
    _previous: list[np.ndarray]

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self._global is not None:
            self._previous = [flatten(self._global), *getattr(self, "_previous", [])][:_STALE_MEMORY]
        self._global = arrays.to_numpy_ndarrays()
        if self.proximal_mu > 0:
            config["proximal-mu"] = self.proximal_mu
        return super().configure_train(server_round, arrays, config, grid)  # type: ignore[misc, no-any-return]

    def _name(self, reply: Message) -> str:
        node_id = reply.metadata.src_node_id
        return self.member_name(node_id) if self.member_name is not None else f"node-{node_id}"

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        valid = [r for r in replies if not r.has_error()]
        if not valid or self._global is None:
            return super().aggregate_train(server_round, replies)  # type: ignore[misc, no-any-return]
        config = self.robust
        like = self._global
        g = flatten(like)
        weights = [flatten(r.content["arrays"].to_numpy_ndarrays()) for r in valid]  # type: ignore[union-attr]
        names = [self._name(r) for r in valid]
        keep = list(range(len(valid)))
        if config.check:
            report = check_updates(
                server_round,
                g,
                weights,
                names,
                norm_ratio=config.norm_ratio,
                min_norm_ratio=config.min_norm_ratio,
                min_cosine=config.min_cosine,
                previous_globals=getattr(self, "_previous", []),
            )
            if config.check_action == "exclude" and report.flagged:
                keep = [i for i, m in enumerate(report.members) if not m.flagged]
                if len(keep) < self.min_train_nodes:
                    raise FederationError(
                        f"run_federation: round {server_round} train: the update check flagged "
                        f"{', '.join(report.flagged)}; {len(keep)} update(s) remain, at least {self.min_train_nodes} "
                        "required (min_train_nodes). Inspect the flagged members, or set check_action='log'."
                    )
                report = UpdateCheckReport(
                    server_round=report.server_round,
                    median_norm=report.median_norm,
                    members=report.members,
                    excluded=report.flagged,
                )
            if self.on_update_check is not None:
                self.on_update_check(report)
        kept = [valid[i] for i in keep]
        if config.clip != "none":
            deltas = [weights[i] - g for i in keep]
            if config.clip == "fixed":
                bound = config.clip_norm
            else:
                bound = config.clip_factor * float(np.median([np.linalg.norm(d) for d in deltas]))
            for reply, delta in zip(kept, deltas, strict=True):
                clipped, factor = clip_update(delta, bound)
                if factor < 1.0:
                    record = reply.content["arrays"]
                    keys = list(record.keys())  # type: ignore[union-attr]
                    new = _unflatten(g + clipped, like)
                    reply.content["arrays"] = ArrayRecord(
                        {k: Array(np.ascontiguousarray(a)) for k, a in zip(keys, new, strict=True)}
                    )
        if isinstance(self, Bulyan):
            if len(kept) < 3:
                raise FederationError(
                    f"run_federation: round {server_round}: Bulyan needs at least 3 updates, got {len(kept)}."
                )
            f = min(config.assumed_malicious, (len(kept) - 3) // 4)
            if f < config.assumed_malicious:
                logger.warning(
                    "round %d: Bulyan with %d updates tolerates at most %d malicious (4f+3 <= n); using f=%d instead "
                    "of assumed_malicious=%d",
                    server_round,
                    len(kept),
                    f,
                    f,
                    config.assumed_malicious,
                )
            self.num_malicious_nodes = f
        if isinstance(self, MultiKrum) and not isinstance(self, Krum):
            select = config.multikrum_select or max(1, len(kept) - config.assumed_malicious)
            self.num_nodes_to_select = min(select, len(kept))
        errors = [r for r in replies if r.has_error()]
        # Flower's Bulyan calls gc.collect() once per selected update (ArrayRecord.to_numpy_ndarrays with
        # keep_input=False); a full collection costs ~0.5 s in a process holding torch and a data set. Freezing
        # the objects that exist now makes those collections cheap; unfreeze puts them back.
        gc.freeze()
        try:
            return super().aggregate_train(server_round, kept + errors)  # type: ignore[misc, no-any-return]
        finally:
            gc.unfreeze()


_CLASSES: dict[tuple[str, type], type] = {}


def _strategy_class(aggregation: str, quorum_mixin: type) -> type:
    key = (aggregation, quorum_mixin)
    if key not in _CLASSES:
        base = AGGREGATIONS[aggregation]
        _CLASSES[key] = type(f"Robust{base.__name__}", (quorum_mixin, _RobustMixin, base), {})
    return _CLASSES[key]


def build_robust_strategy(
    config: FederationConfig,
    common: Mapping[str, Any],
    quorum_mixin: type,
    *,
    member_name: Callable[[int], str] | None = None,
    on_update_check: UpdateCheckCallback | None = None,
) -> FedAvg:
    """Build the Flower strategy for ``config.robust`` (called by ``build_strategy``).

    Parameters
    ----------
    config : FederationConfig
        With ``robust`` set; ``proximal_mu`` is still sent to members (FedProx's client-side term).
    common : mapping
        Sampling and quorum arguments every Flower strategy takes.
    quorum_mixin : type
        The mixin that checks the quorum first (mamori's ``_QuorumMixin``).
    member_name : callable or None, default=None
        Maps a node id to the member's name for the update check.
    on_update_check : callable or None, default=None
        Receives each training round's :class:`UpdateCheckReport`.

    Returns
    -------
    flwr.serverapp.strategy.FedAvg
        A subclass of the Flower rule's class with the check and clipping in front.
    """
    robust = config.robust
    if robust is None:
        raise ValueError("build_robust_strategy: config.robust is None; use build_strategy for plain FedAvg/FedProx.")
    cls = _strategy_class(robust.aggregation, quorum_mixin)
    kwargs: dict[str, Any] = dict(common)
    if robust.aggregation == "trimmed_mean":
        kwargs["beta"] = robust.trim_beta
    elif robust.aggregation in ("krum", "multikrum", "bulyan"):
        kwargs["num_malicious_nodes"] = robust.assumed_malicious
    strategy = cls(**kwargs)
    strategy.robust = robust
    strategy.proximal_mu = config.proximal_mu
    strategy.member_name = member_name
    strategy.on_update_check = on_update_check
    return strategy  # type: ignore[no-any-return]


class ClippedTrainer:
    """A member that clips its own update before sending it (works under secure aggregation).

    Parameters
    ----------
    trainer : LocalTrainer
        The member's trainer.
    clip_norm : float
        L2 bound on ``new_weights - global_weights``.

    Notes
    -----
    Client-side clipping bounds the contribution of members running the unmodified client; a
    malicious member simply does not clip. It is the only clipping SecAgg+ allows (the coordinator
    sees the sum of masked updates only).
    """

    def __init__(self, trainer: LocalTrainer, clip_norm: float) -> None:
        self.trainer = trainer
        self.clip_norm = clip_norm

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train with the wrapped trainer, then clip the update to ``clip_norm``."""
        if not self.clip_norm > 0:
            raise FederationError(f"ClippedTrainer: clip_norm must be > 0, got {self.clip_norm}.")
        new, n, metrics = self.trainer.fit(arrays, config)
        g = flatten(arrays)
        clipped, factor = clip_update(flatten(new) - g, self.clip_norm)
        if factor < 1.0:
            logger.debug("ClippedTrainer: update clipped by %.3f", factor)
        return _unflatten(g + clipped, [np.asarray(a) for a in new]), n, metrics

    def evaluate(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[float, int, dict[str, float]]:
        """Evaluate with the wrapped trainer."""
        return self.trainer.evaluate(arrays, config)
