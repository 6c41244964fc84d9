"""What changes over a run's rounds: the members' learning-rate factor and the server's tail average.

Both are driven by the coordinator, so they work the same in-process, under SecAgg+ and in the deployment:
the coordinator computes each round's learning-rate factor and sends it in the train config
(:data:`LR_FACTOR_KEY`); members multiply their base learning rate by it. Tail averaging happens on the
global weights the coordinator holds after each round, never on a member's update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from mamori.errors import FederationError

__all__ = ["LR_FACTOR_KEY", "LRSchedule", "TailAverage", "check_schedule", "lr_factor", "received_lr_factor"]

#: Train-config key of the round's learning-rate multiplier (present only when the schedule is not constant).
LR_FACTOR_KEY = "lr_factor"

#: The shapes :func:`lr_factor` knows.
LRSchedule = Literal["constant", "cosine", "linear"]


def lr_factor(schedule: str, server_round: int, rounds: int, floor: float) -> float:
    """The members' learning-rate multiplier in federated round ``server_round`` (1-based) of ``rounds``.

    Parameters
    ----------
    schedule : {"constant", "cosine", "linear"}
        ``"constant"``: 1 in every round; ``"cosine"``: half a cosine from 1 in the first round down to
        ``floor`` in the last; ``"linear"``: a straight line between the same two points.
    server_round : int
        The round, from 1 (Flower's numbering); rounds outside ``1..rounds`` are clipped to it.
    rounds : int
        Rounds of the federation.
    floor : float
        The multiplier of the last round, in ``(0, 1]``.

    Returns
    -------
    float
        The multiplier (in ``[floor, 1]``).

    Raises
    ------
    ValueError
        For an unknown ``schedule``.
    """
    if schedule == "constant" or rounds <= 1:
        return 1.0
    t = (min(max(server_round, 1), rounds) - 1) / (rounds - 1)
    if schedule == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "linear":
        return 1.0 - (1.0 - floor) * t
    raise ValueError(f"lr_factor: schedule must be 'constant', 'cosine' or 'linear'; got {schedule!r}.")


def received_lr_factor(config: Mapping[str, object], where: str) -> float | None:
    """The learning-rate factor a member's train ``config`` carries, checked; None when there is none.

    Parameters
    ----------
    config : mapping
        The round's train config, as the member received it.
    where : str
        Who is reading it (named in the error).

    Returns
    -------
    float or None
        The factor, in ``(0, 1]``; None when the coordinator sent none (``lr_schedule="constant"``).

    Raises
    ------
    FederationError
        If the factor is not a number in ``(0, 1]``.
    """
    factor = config.get(LR_FACTOR_KEY)
    if factor is None:
        return None
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < float(factor) <= 1:
        raise FederationError(f"{where}: {LR_FACTOR_KEY} must be a number in (0, 1]; the coordinator sent {factor!r}.")
    return float(factor)


def check_schedule(lr_schedule: str, lr_floor: float, tail_average: int, num_rounds: int) -> None:
    """Refuse schedule settings that contradict each other (shared by FederationConfig and consortium.toml).

    Parameters
    ----------
    lr_schedule : str
        The schedule's shape.
    lr_floor : float
        The last round's multiplier; must stay 1.0 with ``"constant"``.
    tail_average : int
        Rounds averaged at the end; at most ``num_rounds``.
    num_rounds : int
        Rounds of the run.

    Raises
    ------
    ValueError
        Naming the settings and their values.
    """
    if lr_schedule == "constant" and lr_floor != 1.0:
        raise ValueError(
            f"lr_floor={lr_floor} has no effect with lr_schedule='constant'; set lr_schedule to 'cosine' or 'linear', "
            "or leave lr_floor at 1.0."
        )
    if tail_average > num_rounds:
        raise ValueError(
            f"tail_average={tail_average} exceeds num_rounds={num_rounds}; average at most num_rounds rounds "
            "(0 or 1: off)."
        )


class TailAverage:
    """Running uniform mean of the global weights after each of the last ``tail`` of ``num_rounds`` rounds.

    Parameters
    ----------
    num_rounds : int
        The run's last round (the deployment's target round when a run resumes).
    tail : int
        Rounds averaged; 0 or 1: off (:meth:`result` returns the last round's weights).

    Notes
    -----
    The sum is kept in float64 and divided once at the end, then cast back to the weights' dtype, so the
    result does not depend on how the rounds are grouped.
    """

    def __init__(self, num_rounds: int, tail: int) -> None:
        self.num_rounds = int(num_rounds)
        self.tail = min(max(int(tail), 0), self.num_rounds)
        self._sum: list[np.ndarray] = []
        self._rounds: list[int] = []

    @property
    def active(self) -> bool:
        """Whether more than one round is averaged."""
        return self.tail > 1

    @property
    def first_round(self) -> int:
        """The first averaged round (``num_rounds`` when off)."""
        return self.num_rounds - max(self.tail, 1) + 1

    def add(self, server_round: int, arrays: Sequence[np.ndarray]) -> None:
        """Count the global weights after ``server_round`` if it is one of the averaged rounds."""
        if not self.active or server_round < self.first_round or server_round > self.num_rounds:
            return
        if not self._sum:
            self._sum = [np.zeros(np.shape(a), dtype=np.float64) for a in arrays]
        for acc, a in zip(self._sum, arrays, strict=True):
            acc += a
        self._rounds.append(int(server_round))

    def result(self, last: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The averaged weights (dtypes of ``last``), or ``last`` itself when off.

        Parameters
        ----------
        last : sequence of numpy.ndarray
            The global weights after the last round.

        Returns
        -------
        list of numpy.ndarray
            The mean of the averaged rounds' weights, cast to ``last``'s dtypes.

        Raises
        ------
        FederationError
            If not every averaged round was added (e.g. the run stopped early).
        """
        if not self.active:
            return list(last)
        expected = list(range(self.first_round, self.num_rounds + 1))
        if sorted(self._rounds) != expected:
            raise FederationError(
                f"TailAverage: tail_average={self.tail} needs the global weights of rounds "
                f"{expected[0]}..{expected[-1]}; got rounds {sorted(self._rounds)} (did the run stop early?)."
            )
        return [(acc / self.tail).astype(a.dtype) for acc, a in zip(self._sum, last, strict=True)]
