"""The privacy ledger: per member, the differential-privacy budget spent, round by round, run by run.

A row is what one member has spent *so far in one run* after one round (epsilon is cumulative within
the run, from RDP accounting, so later rows of a run supersede earlier ones). Across runs the
guarantees compose; the ledger adds them up (basic composition: epsilons add, deltas add) - an upper
bound, never an underestimate. Different units (``"customer"`` for record-level DP inside a member,
``"member"`` for member-level DP) protect different things and are totalled separately.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mamori.errors import StoreError
from mamori.store.store import utc_now
from mamori.store.tables import PrivacyLedgerRow

if TYPE_CHECKING:
    from mamori.store.store import Store

__all__ = ["LedgerEntry", "PrivacyLedger", "PrivacyTotal"]

logger = logging.getLogger(__name__)

_UNITS = ("customer", "member")


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row as read back.

    Attributes
    ----------
    id : int
        Row id.
    member : str
        The member.
    run_id : str
        The federated run (any id the caller chooses, e.g. the model name and a timestamp).
    server_round : int
        Round after which the cumulative spend was recorded.
    unit : str
        ``"customer"`` or ``"member"``.
    mechanism : str
        E.g. ``"dp-sgd/poisson-gaussian/rdp"``.
    epsilon, delta : float
        Cumulative epsilon of the run so far, and its delta.
    noise_multiplier : float
        The Gaussian noise multiplier.
    steps : int
        Noisy releases composed so far in the run.
    recorded_at : str
        UTC time of recording.
    """

    id: int
    member: str
    run_id: str
    server_round: int
    unit: str
    mechanism: str
    epsilon: float
    delta: float
    noise_multiplier: float
    steps: int
    recorded_at: str


@dataclass(frozen=True)
class PrivacyTotal:
    """A member's total spend for one unit, over every run in the ledger.

    Attributes
    ----------
    member : str
        The member.
    unit : str
        ``"customer"`` or ``"member"``.
    epsilon : float
        Sum over runs of each run's final epsilon (basic composition).
    delta : float
        Sum over runs of their deltas.
    runs : int
        Runs recorded.
    rounds : int
        Rounds recorded, over all runs.
    mechanisms : tuple of str
        Mechanisms used.
    """

    member: str
    unit: str
    epsilon: float
    delta: float
    runs: int
    rounds: int
    mechanisms: tuple[str, ...]


def _entry(row: PrivacyLedgerRow) -> LedgerEntry:
    return LedgerEntry(
        id=int(row.id),
        member=row.member,
        run_id=row.run_id,
        server_round=int(row.server_round),
        unit=row.unit,
        mechanism=row.mechanism,
        epsilon=float(row.epsilon),
        delta=float(row.delta),
        noise_multiplier=float(row.noise_multiplier),
        steps=int(row.steps),
        recorded_at=row.recorded_at,
    )


class PrivacyLedger:
    """Read and write the privacy ledger of a store.

    Parameters
    ----------
    store : Store
        An open store (:func:`mamori.store.open_store`).

    Examples
    --------
    >>> ledger = PrivacyLedger(open_store("sqlite:///:memory:"))  # doctest: +SKIP
    >>> ledger.record("bank-a", 1, 2.1, 1e-5, "dp-sgd/poisson-gaussian/rdp", run_id="run-1")  # doctest: +SKIP
    >>> ledger.total("bank-a").epsilon  # doctest: +SKIP
    2.1
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        member: str,
        server_round: int,
        epsilon: float,
        delta: float,
        mechanism: str,
        *,
        run_id: str,
        unit: str = "customer",
        noise_multiplier: float = 0.0,
        steps: int = 0,
    ) -> LedgerEntry:
        """Record what ``member`` has spent in run ``run_id`` up to round ``server_round``.

        Parameters
        ----------
        member : str
            The member.
        server_round : int
            The round (>= 1).
        epsilon : float
            Cumulative epsilon of the run so far (>= 0, finite).
        delta : float
            Its delta, in [0, 1).
        mechanism : str
            The mechanism's name.
        run_id : str
            The run.
        unit : {"customer", "member"}, default="customer"
            What one neighbouring change is.
        noise_multiplier : float, default=0.0
            The noise multiplier used.
        steps : int, default=0
            Releases composed so far.

        Returns
        -------
        LedgerEntry
            The stored row.

        Raises
        ------
        StoreError
            If a value is out of range, the round was already recorded for this member, run and
            mechanism, or the database cannot be written.
        """
        where = f"PrivacyLedger.record (member {member!r}, run {run_id!r}, round {server_round})"
        if not (math.isfinite(epsilon) and epsilon >= 0 and 0 <= delta < 1 and server_round >= 1):
            raise StoreError(
                f"{where}: need a finite epsilon >= 0, 0 <= delta < 1 and round >= 1; got epsilon={epsilon}, "
                f"delta={delta}."
            )
        if unit not in _UNITS:
            raise StoreError(f"{where}: unit must be one of {_UNITS}, got {unit!r}.")
        row = PrivacyLedgerRow(
            member=member,
            run_id=run_id,
            server_round=int(server_round),
            unit=unit,
            mechanism=mechanism,
            epsilon=float(epsilon),
            delta=float(delta),
            noise_multiplier=float(noise_multiplier),
            steps=int(steps),
            recorded_at=utc_now(),
        )
        try:
            with self.store.write() as session:
                session.add(row)
                session.flush()
                entry = _entry(row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StoreError(f"{where}: this round is already in the ledger for {mechanism!r}.") from exc
            raise
        logger.info("privacy ledger: %s spent epsilon %.3f (delta %.2g) in %s round %d", member, epsilon, delta,
                    run_id, server_round)
        return entry

    def entries(self, member: str | None = None, run_id: str | None = None) -> list[LedgerEntry]:
        """Rows of the ledger, oldest first, optionally for one member and/or run.

        Parameters
        ----------
        member : str or None, default=None
            Only this member.
        run_id : str or None, default=None
            Only this run.

        Returns
        -------
        list of LedgerEntry
        """
        query = select(PrivacyLedgerRow).order_by(PrivacyLedgerRow.id)
        if member is not None:
            query = query.where(PrivacyLedgerRow.member == member)
        if run_id is not None:
            query = query.where(PrivacyLedgerRow.run_id == run_id)
        with self.store.read() as session:
            return [_entry(r) for r in session.scalars(query)]

    def totals(self) -> list[PrivacyTotal]:
        """Every member's total spend per unit, over all runs (sorted by member, then unit).

        Returns
        -------
        list of PrivacyTotal
        """
        last: dict[tuple[str, str, str, str], LedgerEntry] = {}
        rounds: dict[tuple[str, str], int] = {}
        for e in self.entries():
            key = (e.member, e.unit, e.run_id, e.mechanism)
            if key not in last or e.server_round >= last[key].server_round:
                last[key] = e
            rounds[(e.member, e.unit)] = rounds.get((e.member, e.unit), 0) + 1
        acc: dict[tuple[str, str], dict[str, object]] = {}
        for (member, unit, run_id, mechanism), e in sorted(last.items()):
            a = acc.setdefault((member, unit), {"epsilon": 0.0, "delta": 0.0, "runs": set(), "mechanisms": set()})
            a["epsilon"] = float(a["epsilon"]) + e.epsilon  # type: ignore[arg-type]
            a["delta"] = float(a["delta"]) + e.delta  # type: ignore[arg-type]
            a["runs"].add(run_id)  # type: ignore[attr-defined]
            a["mechanisms"].add(mechanism)  # type: ignore[attr-defined]
        return [
            PrivacyTotal(
                member=member,
                unit=unit,
                epsilon=float(a["epsilon"]),  # type: ignore[arg-type]
                delta=min(1.0, float(a["delta"])),  # type: ignore[arg-type]
                runs=len(a["runs"]),  # type: ignore[arg-type]
                rounds=rounds[(member, unit)],
                mechanisms=tuple(sorted(a["mechanisms"])),  # type: ignore[arg-type]
            )
            for (member, unit), a in sorted(acc.items())
        ]

    def total(self, member: str, unit: str = "customer") -> PrivacyTotal:
        """One member's total for one unit (zeros when nothing is recorded).

        Parameters
        ----------
        member : str
            The member.
        unit : {"customer", "member"}, default="customer"
            The unit.

        Returns
        -------
        PrivacyTotal
        """
        for t in self.totals():
            if t.member == member and t.unit == unit:
                return t
        return PrivacyTotal(member=member, unit=unit, epsilon=0.0, delta=0.0, runs=0, rounds=0, mechanisms=())

    def remaining(self, member: str, budget: float, unit: str = "customer") -> float:
        """Epsilon left of a lifetime ``budget`` for ``member`` (0 when spent), for planning the next run.

        Parameters
        ----------
        member : str
            The member.
        budget : float
            The member's lifetime epsilon budget for this unit.
        unit : {"customer", "member"}, default="customer"
            The unit.

        Returns
        -------
        float
        """
        return max(0.0, float(budget) - self.total(member, unit).epsilon)
