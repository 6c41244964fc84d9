"""The per-round check of members' updates: norms and cosines that single out an anomalous member.

Each training round the coordinator sees every member's new weights ``w_i`` and the global weights
``g`` it sent; the update is ``d_i = w_i - g``. :func:`check_updates` measures every update against
the round's robust centre (the coordinate-wise median of all updates) and flags a member whose
update

- is much longer than the round's median norm (``norm_ratio``): scaled model replacement, boosted
  sign flipping;
- is (almost) empty, or replays an earlier global model: a free-rider sending stale weights;
- points away from the others (cosine to the median update below ``min_cosine``): sign flipping,
  label flipping that dominates a member's update.

The result, an :class:`UpdateCheckReport`, names the flagged members and why; the coordinator writes
it to the audit log (:func:`audit_update_check`) and may leave the flagged updates out of the
aggregate (see :class:`~mamori.federation.robust.RobustConfig`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "AuditAppend",
    "UpdateCheckReport",
    "UpdateStats",
    "audit_update_check",
    "check_updates",
    "flatten",
]

logger = logging.getLogger(__name__)

#: ``append(actor, action, subject, details)`` - the signature of ``mamori.store.AuditLog.append``.
AuditAppend = Callable[[str, str, str, Mapping[str, Any]], Any]

_TINY = 1e-12


def flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate arrays into one float64 vector (C order)."""
    if not arrays:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


@dataclass(frozen=True)
class UpdateStats:
    """One member's update in one round, as the check saw it.

    Attributes
    ----------
    member : str
        The member's name.
    norm : float
        L2 norm of the update ``w_i - g``.
    norm_ratio : float
        ``norm`` divided by the round's median norm.
    cosine : float
        Cosine between the update and the coordinate-wise median of all updates (NaN when either is 0).
    flagged : bool
        True when any rule fired.
    reasons : tuple of str
        Which rules fired: ``"norm_high"``, ``"norm_low"``, ``"stale"``, ``"cosine"``.
    """

    member: str
    norm: float
    norm_ratio: float
    cosine: float
    flagged: bool = False
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateCheckReport:
    """The check of one training round.

    Attributes
    ----------
    server_round : int
        The round.
    median_norm : float
        Median update norm of the round (the scale the ratios refer to).
    members : tuple of UpdateStats
        One per member that answered, in reply order.
    excluded : tuple of str
        Members whose updates were left out of the aggregate (empty when flags are only logged).
    """

    server_round: int
    median_norm: float
    members: tuple[UpdateStats, ...] = field(default_factory=tuple)
    excluded: tuple[str, ...] = ()

    @property
    def flagged(self) -> tuple[str, ...]:
        """Names of the flagged members."""
        return tuple(m.member for m in self.members if m.flagged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN cosines become None)."""
        out = asdict(self)
        for row in out["members"]:
            row["reasons"] = list(row["reasons"])
            for key in ("norm", "norm_ratio", "cosine"):
                if not np.isfinite(row[key]):
                    row[key] = None
        out["flagged"] = list(self.flagged)
        out["excluded"] = list(self.excluded)
        return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na = float(np.linalg.norm(a))
    nb = float(np.linalg.norm(b))
    if na <= _TINY or nb <= _TINY:
        return float("nan")
    return float(np.dot(a, b) / (na * nb))


def check_updates(
    server_round: int,
    global_weights: np.ndarray,
    member_weights: Sequence[np.ndarray],
    members: Sequence[str],
    *,
    norm_ratio: float = 3.0,
    min_norm_ratio: float = 0.05,
    min_cosine: float = 0.0,
    previous_globals: Sequence[np.ndarray] = (),
) -> UpdateCheckReport:
    """Flag members whose update is too long, (almost) empty, stale, or points away from the others.

    Parameters
    ----------
    server_round : int
        The round (for the report).
    global_weights : numpy.ndarray of shape (n_params,)
        The flattened global weights the members started from.
    member_weights : sequence of numpy.ndarray of shape (n_params,)
        Each member's flattened new weights, in the order of ``members``.
    members : sequence of str
        Member names.
    norm_ratio : float, default=3.0
        Flag ``"norm_high"`` when an update's norm exceeds ``norm_ratio`` times the round's median norm.
    min_norm_ratio : float, default=0.05
        Flag ``"norm_low"`` when it is below ``min_norm_ratio`` times the median (no training done).
    min_cosine : float, default=0.0
        Flag ``"cosine"`` when the cosine to the coordinate-wise median update is below this.
    previous_globals : sequence of numpy.ndarray, default=()
        Earlier global weights (flattened); a member that sends one of them back is flagged ``"stale"``.

    Returns
    -------
    UpdateCheckReport
        Per member norm, ratio, cosine and the rules that fired.

    Notes
    -----
    The median is the reference, so the check holds while fewer than half of the members are
    malicious. With fewer than 3 updates no rule is applied (there is no majority to compare with).
    """
    if len(member_weights) != len(members):
        raise ValueError(
            f"check_updates: {len(member_weights)} weight vectors for {len(members)} member names; give one per member."
        )
    g = np.asarray(global_weights, dtype=np.float64)
    if not member_weights:
        return UpdateCheckReport(server_round=server_round, median_norm=float("nan"))
    deltas = np.stack([np.asarray(w, dtype=np.float64) - g for w in member_weights])
    norms = np.linalg.norm(deltas, axis=1)
    median_norm = float(np.median(norms))
    centre = np.median(deltas, axis=0)
    enough = len(members) >= 3
    rows = []
    for i, name in enumerate(members):
        ratio = float(norms[i] / median_norm) if median_norm > _TINY else float("nan")
        cosine = _cosine(deltas[i], centre)
        reasons: list[str] = []
        if enough:
            if median_norm > _TINY and ratio > norm_ratio:
                reasons.append("norm_high")
            if median_norm > _TINY and ratio < min_norm_ratio:
                reasons.append("norm_low")
            if np.isfinite(cosine) and cosine < min_cosine:
                reasons.append("cosine")
        if any(np.array_equal(member_weights[i], p) for p in previous_globals if p.shape == g.shape):
            reasons.append("stale")
        rows.append(
            UpdateStats(
                member=name,
                norm=float(norms[i]),
                norm_ratio=ratio,
                cosine=cosine,
                flagged=bool(reasons),
                reasons=tuple(reasons),
            )
        )
    report = UpdateCheckReport(server_round=server_round, median_norm=median_norm, members=tuple(rows))
    if report.flagged:
        logger.warning(
            "round %d: flagged update(s) from %s",
            server_round,
            ", ".join(f"{m.member} ({'+'.join(m.reasons)})" for m in rows if m.flagged),
        )
    return report


def audit_update_check(append: AuditAppend, report: UpdateCheckReport, *, actor: str = "coordinator") -> int:
    """Write one audit-log entry per flagged member of a round.

    Parameters
    ----------
    append : callable
        ``append(actor, action, subject, details)``, e.g. ``store.audit.append`` of
        :class:`mamori.store.AuditLog`.
    report : UpdateCheckReport
        The round's check.
    actor : str, default="coordinator"
        Who records the flag.

    Returns
    -------
    int
        Number of entries written.

    Notes
    -----
    Action ``"federation.update_flagged"``, subject ``"member:<name>"``, details: round, norm,
    norm ratio, cosine, reasons, whether the update was excluded, and the round's median norm.
    """
    written = 0
    for row in report.members:
        if not row.flagged:
            continue
        append(
            actor,
            "federation.update_flagged",
            f"member:{row.member}",
            {
                "round": report.server_round,
                "norm": row.norm,
                "norm_ratio": row.norm_ratio if np.isfinite(row.norm_ratio) else None,
                "cosine": row.cosine if np.isfinite(row.cosine) else None,
                "reasons": list(row.reasons),
                "excluded": row.member in report.excluded,
                "median_norm": report.median_norm,
            },
        )
        written += 1
    return written
