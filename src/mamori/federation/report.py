"""What a federated run reports: per member and round, per round, and for the whole run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mamori.federation.weights import weights_hash as _weights_hash

if TYPE_CHECKING:
    from mamori.federation.schedule import TailAverage

__all__ = ["FederationResult", "MemberRound", "RoundReport", "aggregate_members", "weighted_mean"]


def weighted_mean(values: Iterable[tuple[float, float]]) -> float:
    """Weighted mean of ``(value, weight)`` pairs, ignoring NaN values; NaN when nothing is left."""
    total = 0.0
    weight_sum = 0.0
    for value, weight in values:
        if value is None or not math.isfinite(value) or weight <= 0:
            continue
        total += value * weight
        weight_sum += weight
    return total / weight_sum if weight_sum > 0 else math.nan


def _clean(value: Any) -> Any:
    """Turn NaN/inf into None and tuples into lists, recursively (for JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class MemberRound:
    """One member's part in one round.

    Attributes
    ----------
    member : str
        The member's name.
    node_id : int
        Its Flower node id in this run.
    train_status, evaluate_status : str
        ``"ok"``, ``"error"``, ``"timeout"`` or ``"skipped"`` (not sampled, or round 0 for training).
    train_examples, evaluate_examples : int
        Examples the member reported (0 unless ``"ok"``).
    train_metrics : dict of str to float
        The member's training metrics (e.g. ``train_loss``).
    evaluate_loss : float or None
        Loss of the global model on the member's evaluation split.
    evaluate_metrics : dict of str to float
        E.g. ``pr_auc``, ``roc_auc`` of the global model on the member's evaluation split.
    bytes_down, bytes_up : int
        Serialized bytes the member received and sent this round.
    seconds : float
        Wall-clock seconds of the member's train + evaluate exchanges.
    error : str or None
        Reason of a failure (exception type and message, or the timeout).
    """

    member: str
    node_id: int
    train_status: str = "skipped"
    evaluate_status: str = "skipped"
    train_examples: int = 0
    evaluate_examples: int = 0
    train_metrics: dict[str, float] = field(default_factory=dict)
    evaluate_loss: float | None = None
    evaluate_metrics: dict[str, float] = field(default_factory=dict)
    bytes_down: int = 0
    bytes_up: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class RoundReport:
    """One federated round: training, aggregation, federated evaluation.

    Round 0 is the federated evaluation of the initial weights (no training).

    Attributes
    ----------
    server_round : int
        1-based round number (0 = initial model).
    seconds : float
        Wall-clock seconds of the round (excluding the callbacks).
    bytes_down, bytes_up : int
        Serialized bytes sent to / received from all members this round.
    train_metrics : dict of str to float
        Training metrics averaged over members, weighted by their example counts.
    evaluate_loss : float or None
        Federated evaluation loss, weighted by the members' evaluation example counts.
    evaluate_metrics : dict of str to float
        Federated evaluation metrics, weighted the same way (NaN values, e.g. the PR-AUC of a
        member whose split holds one class, are left out of the average).
    members : tuple of MemberRound
        Per member, in member order.
    weights_hash : str
        :func:`mamori.federation.weights_hash` of the global weights after the round.
    """

    server_round: int
    seconds: float
    bytes_down: int
    bytes_up: int
    train_metrics: dict[str, float]
    evaluate_loss: float | None
    evaluate_metrics: dict[str, float]
    members: tuple[MemberRound, ...]
    weights_hash: str

    @classmethod
    def from_members(
        cls, server_round: int, seconds: float, members: list[MemberRound], eval_loss: float, weights_hash: str
    ) -> RoundReport:
        """Build a round's report from its members' rows: bytes summed, metrics example-weighted."""
        return cls(
            server_round=server_round,
            seconds=seconds,
            bytes_down=sum(m.bytes_down for m in members),
            bytes_up=sum(m.bytes_up for m in members),
            train_metrics=aggregate_members(members, "train"),
            evaluate_loss=None if np.isnan(eval_loss) else eval_loss,
            evaluate_metrics=aggregate_members(members, "evaluate"),
            members=tuple(members),
            weights_hash=weights_hash,
        )

    @property
    def failed_members(self) -> list[str]:
        """Names of members whose train or evaluate exchange failed this round."""
        return [
            m.member
            for m in self.members
            if m.train_status in ("error", "timeout") or m.evaluate_status in ("error", "timeout")
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None)."""
        return dict(_clean(asdict(self)))


@dataclass(frozen=True)
class FederationResult:
    """Outcome of :func:`mamori.federation.run_federation`.

    Attributes
    ----------
    arrays : list of numpy.ndarray
        The run's model: the global weights after the last round, or with ``tail_average > 1`` the uniform mean
        of the global weights after each of the last ``tail_average`` rounds (``FederationConfig.tail_average``).
    weights_hash : str
        The hash of ``arrays`` (what is returned and deployed).
    history : tuple of RoundReport
        Round 0 (if ``evaluate_initial``) then rounds 1..num_rounds.
    seconds : float
        Wall-clock seconds of the whole run.
    strategy : str
        ``"fedavg"`` or ``"fedprox"``.
    num_members : int
        Members in the federation.
    tail_average : int, default=1
        Rounds averaged into ``arrays``; 1: ``arrays`` is the last round's global model.
    last_round_hash : str, default=""
        The hash of the last round's own global weights (``history[-1].weights_hash``; equals
        ``weights_hash`` unless averaged).
    """

    arrays: list[np.ndarray] = field(repr=False)
    weights_hash: str
    history: tuple[RoundReport, ...]
    seconds: float
    strategy: str
    num_members: int
    tail_average: int = 1
    last_round_hash: str = ""

    @classmethod
    def from_rounds(cls, last: list[np.ndarray], tail: TailAverage, **fields: Any) -> FederationResult:
        """The result of a run whose last global weights are ``last``, tail-averaged by ``tail`` when it is on."""
        arrays = tail.result(last)
        return cls(
            arrays=arrays,
            weights_hash=_weights_hash(arrays),
            tail_average=max(tail.tail, 1),
            last_round_hash=_weights_hash(last),
            **fields,
        )

    @property
    def averaged(self) -> bool:
        """Whether ``arrays`` is a tail average of several rounds' global weights."""
        return self.tail_average > 1

    @property
    def bytes_down(self) -> int:
        """Bytes sent to members over the whole run."""
        return sum(r.bytes_down for r in self.history)

    @property
    def bytes_up(self) -> int:
        """Bytes received from members over the whole run."""
        return sum(r.bytes_up for r in self.history)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict without the weights themselves."""
        return {
            "weights_hash": self.weights_hash,
            "tail_average": self.tail_average,
            "last_round_hash": self.last_round_hash,
            "seconds": self.seconds,
            "strategy": self.strategy,
            "num_members": self.num_members,
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "rounds": [r.to_dict() for r in self.history],
        }


def aggregate_members(members: list[MemberRound], phase: str) -> dict[str, float]:
    """Example-weighted mean of each metric over the members whose ``phase`` ("train" or "evaluate") succeeded."""
    if phase == "train":
        rows = [(m.train_metrics, m.train_examples) for m in members if m.train_status == "ok"]
    else:
        rows = [(m.evaluate_metrics, m.evaluate_examples) for m in members if m.evaluate_status == "ok"]
    keys = sorted({k for metrics, _ in rows for k in metrics})
    return {k: weighted_mean((metrics.get(k, math.nan), n) for metrics, n in rows) for k in keys}
