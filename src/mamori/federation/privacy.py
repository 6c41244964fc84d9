"""Privacy settings of a federation (secure aggregation, member-level DP) and the privacy spent per round.

These are plain settings; the mechanisms live in :mod:`mamori.federation.secagg` (SecAgg+),
:mod:`mamori.federation.memberdp` (Flower's DP wrappers) and :mod:`mamori.federation.dpsgd` (record-level
DP-SGD inside a member). :func:`privacy_spends` turns a round's report into privacy-ledger rows; the
caller writes them to the store (``mamori.store.PrivacyLedger``) - the federation never touches the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mamori.federation.accounting import (
    MECHANISM_CENTRAL,
    MECHANISM_DPSGD,
    PrivacySpend,
    calibrate_noise,
    central_dp_epsilon,
)

if TYPE_CHECKING:
    from mamori.federation.config import FederationConfig
    from mamori.federation.report import RoundReport

__all__ = [
    "MemberDPConfig",
    "SecAggParameters",
    "SecureAggregationConfig",
    "member_dp_noise",
    "privacy_spends",
    "secagg_parameters",
]


class SecureAggregationConfig(BaseModel):
    """Flower SecAgg+ settings (used when ``FederationConfig.secure_aggregation`` is on).

    Parameters
    ----------
    num_shares : int or float or None, default=None
        Size of each member's SecAgg+ neighbourhood, the member itself included (Bell et al. 2020: masks and
        key shares go to neighbours only, not to all members): an int > 2, a float share of the sampled
        members (1.0: everyone - plain SecAgg), or None for the smallest neighbourhood that keeps a round
        alive down to ``min_train_nodes`` members: ``threshold + (sampled - min_train_nodes)`` (at least
        ``threshold + 1``), made odd (Flower's neighbourhoods are symmetric), capped at the sampled members.
        Any ``sampled - min_train_nodes`` dropouts then leave every neighbourhood ``threshold`` live holders.
    reconstruction_threshold : int or float or None, default=None
        Shares needed to reconstruct a secret: an int, a float share of ``num_shares``, or None for a strict
        majority of the minimum quorum, ``max(2, min_train_nodes // 2 + 1)`` (the rule of
        ``mamori.analytics``' secure sum). The coordinator colluding with fewer than ``threshold`` members
        cannot rebuild any member's secrets; see :func:`secagg_parameters` for the collusion tolerance.
    clipping_range : float, default=8.0
        Model parameters are clipped to ``[-clipping_range, clipping_range]`` before quantization.
    quantization_range : int, default=2**30
        Quantization levels. Each member rounds its example-weighted update to steps of
        ``2 * clipping_range / quantization_range``, so the aggregate's error per parameter is at most
        ``members * step * max_weight / total examples``. 2**30 is the finest grid Flower's quantizer can hold
        (it rounds into int32); Flower's own default, 2**22, is 256 times coarser - with the first round's
        weight range of 1e6 that is an error of 0.027 per parameter for three members with 420 rows in all,
        enough to cost a small consortium's model 0.06-0.24 ROC-AUC (docs/privacy.md).
    modulus_range : int, default=2**42
        Range of the masks: a power of two above ``members * quantization_range`` so that the masked sum cannot
        wrap around: 2**42 holds up to 4,095 members at 2**30 levels (:meth:`max_members`; a run with more is
        refused). Flower's masks and sums are int64; it is the grid the deployment's statistics round always used.
    max_weight : float or None, default=None
        Largest aggregation weight (number of examples) SecAgg+ encodes; the precision of the
        aggregate degrades with ``max_weight / total examples``. None adapts it: 1e6 in the first round,
        then 4x the largest example count the members reported (counts are sent in clear anyway).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_shares: int | float | None = Field(default=None, gt=0)
    reconstruction_threshold: int | float | None = Field(default=None, gt=0)
    clipping_range: float = Field(default=8.0, gt=0.0)
    quantization_range: int = Field(default=2**30, gt=0, le=2**30)
    modulus_range: int = Field(default=2**42, gt=0)
    max_weight: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _check_ranges(self) -> SecureAggregationConfig:
        # Flower checks these only when a round starts; a wrong modulus would fail every run, so say it here.
        if self.modulus_range & (self.modulus_range - 1) or self.modulus_range <= self.quantization_range:
            raise ValueError(
                f"SecureAggregationConfig: modulus_range must be a power of two above quantization_range "
                f"({self.quantization_range}); got {self.modulus_range}."
            )
        return self

    def max_members(self) -> int:
        """The most members whose masked sum fits the modulus (``modulus_range // quantization_range - 1``)."""
        return self.modulus_range // self.quantization_range - 1


@dataclass(frozen=True)
class SecAggParameters:
    """The SecAgg+ protocol sizes of one round (what :func:`secagg_parameters` resolves).

    Attributes
    ----------
    sampled : int
        Members sampled for the round.
    num_shares : int
        Neighbourhood size, the member itself included: each member masks its vector against
        ``num_shares - 1`` neighbours and splits its two secrets into ``num_shares`` Shamir shares.
    threshold : int
        Shares needed to rebuild a secret.
    dropouts_tolerated : int
        Members that may drop out anywhere (even all in one neighbourhood) with the sum still unmasked:
        ``num_shares - threshold``.
    collusion_tolerated : int
        Members that may collude with the coordinator without learning any honest member's update:
        ``min(threshold - 1, num_shares - 2)`` - rebuilding a member's mask key needs ``threshold`` of its
        share holders, and a member all of whose ``num_shares - 1`` neighbours collude is exposed by its
        pairwise masks alone.
    """

    sampled: int
    num_shares: int
    threshold: int
    dropouts_tolerated: int
    collusion_tolerated: int


def secagg_parameters(config: SecureAggregationConfig, sampled: int, min_train_nodes: int) -> SecAggParameters:
    """Resolve the SecAgg+ neighbourhood size and reconstruction threshold of a round with ``sampled`` members.

    Parameters
    ----------
    config : SecureAggregationConfig
        The configured values (None: the defaults documented there).
    sampled : int
        Members sampled for the round (>= 2).
    min_train_nodes : int
        The quorum the round must survive down to.

    Returns
    -------
    SecAggParameters
        Integer sizes as Flower's ``SecAggPlusWorkflow`` uses them (floats resolved as Flower resolves them).
    """
    n = max(2, int(sampled))
    if isinstance(config.reconstruction_threshold, int):
        threshold = config.reconstruction_threshold
    elif config.reconstruction_threshold is None:
        threshold = max(2, min(n, min_train_nodes) // 2 + 1)
    else:
        threshold = -1  # a share of num_shares: resolved below
    if config.num_shares is None:
        k = max(threshold + max(0, n - min_train_nodes), threshold + 1)
        k += 1 - k % 2  # odd: Flower builds symmetric neighbourhoods (offsets -k//2 .. k//2)
        k = min(k, n)
    elif isinstance(config.num_shares, float):  # Flower's rule for a share of the sampled members
        k = round(config.num_shares * n)
        if k < n and k % 2 == 0:
            k += 1
        if k <= 2:
            k = n
        k = min(k, n)
    else:
        k = min(int(config.num_shares) + 1 - int(config.num_shares) % 2, n)
    if threshold < 0:
        threshold = min(k, max(2, round(float(config.reconstruction_threshold or 1.0) * k)))
    return SecAggParameters(
        sampled=n,
        num_shares=k,
        threshold=threshold,
        dropouts_tolerated=k - threshold,
        collusion_tolerated=max(0, min(threshold - 1, k - 2)),
    )


class MemberDPConfig(BaseModel):
    """Member-level differential privacy: clip each member's update, add Gaussian noise to their sum.

    Parameters
    ----------
    epsilon : float
        Budget of the whole run (all rounds), for the unit "one member's participation".
    delta : float, default=1e-5
        Delta of the guarantee.
    clipping_norm : float, default=1.0
        L2 bound of a member's update (local weights minus global weights), clipped on the member
        (Flower's ``fixedclipping_mod``), so it also works under secure aggregation.
    noise_multiplier : float or None, default=None
        Noise standard deviation / clipping norm on the sum; None lets the accountant choose the
        smallest value that keeps ``num_rounds`` rounds within ``(epsilon, delta)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epsilon: float = Field(gt=0.0)
    delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    clipping_norm: float = Field(default=1.0, gt=0.0)
    noise_multiplier: float | None = Field(default=None, gt=0.0)


def member_dp_noise(dp: MemberDPConfig, num_rounds: int) -> float:
    """The noise multiplier of member-level DP for ``num_rounds`` rounds (the configured or calibrated one).

    Parameters
    ----------
    dp : MemberDPConfig
        Budget and clipping.
    num_rounds : int
        Planned rounds.

    Returns
    -------
    float
        Noise standard deviation / clipping norm, applied to the sum of the clipped updates.
    """
    if dp.noise_multiplier is not None:
        return dp.noise_multiplier
    return calibrate_noise(dp.epsilon, dp.delta, steps=num_rounds, mechanism=MECHANISM_CENTRAL)


def privacy_spends(report: RoundReport, config: FederationConfig | None = None) -> list[PrivacySpend]:
    """Privacy-ledger rows for one round: what each member has spent so far in this run.

    Parameters
    ----------
    report : RoundReport
        A round's report (from ``on_round`` or ``FederationResult.history``).
    config : FederationConfig or None, default=None
        The run's config; needed for member-level DP rows.

    Returns
    -------
    list of PrivacySpend
        One row per member that trained with record-level DP this round (from its ``dp_*`` metrics),
        plus, with member-level DP, one row per member for the rounds released so far. Round 0 gives
        nothing.
    """
    out: list[PrivacySpend] = []
    if report.server_round <= 0:
        return out
    for m in report.members:
        metrics = m.train_metrics
        if m.train_status == "ok" and "dp_epsilon" in metrics:
            out.append(
                PrivacySpend(
                    member=m.member,
                    server_round=report.server_round,
                    epsilon=float(metrics["dp_epsilon"]),
                    delta=float(metrics.get("dp_delta", 0.0)),
                    mechanism=MECHANISM_DPSGD,
                    unit="customer",
                    noise_multiplier=float(metrics.get("dp_noise_multiplier", 0.0)),
                    steps=int(metrics.get("dp_steps", 0)),
                )
            )
    member_dp = getattr(config, "member_dp", None) if config is not None else None
    if member_dp is not None:
        assert config is not None
        out.extend(member_dp_spends(member_dp, config.num_rounds, report.server_round,
                                    [m.member for m in report.members]))
    return out


def member_dp_spends(member_dp: MemberDPConfig, num_rounds: int, releases: int, members: Iterable[str], *,
                     server_round: int | None = None) -> list[PrivacySpend]:
    """Privacy-ledger rows of member-level DP: one per member after ``releases`` noisy aggregates.

    Parameters
    ----------
    member_dp : MemberDPConfig
        The run's member-level DP settings.
    num_rounds : int
        Rounds the noise was calibrated for (the run's ``num_rounds``).
    releases : int
        Noisy aggregates released so far in this run (>= 1).
    members : iterable of str
        The members to write a row for.
    server_round : int or None, default=None
        The round the rows name, when it differs from ``releases`` (a deployed run resumed after a
        checkpoint counts its rounds from the model's first round).

    Returns
    -------
    list of PrivacySpend
        Every member has the same spend: the guarantee is about any one member's whole contribution.
    """
    sigma = member_dp_noise(member_dp, num_rounds)
    epsilon = central_dp_epsilon(sigma, releases, member_dp.delta)
    return [
        PrivacySpend(
            member=member,
            server_round=releases if server_round is None else server_round,
            epsilon=epsilon,
            delta=member_dp.delta,
            mechanism=MECHANISM_CENTRAL,
            unit="member",
            noise_multiplier=sigma,
            steps=releases,
        )
        for member in members
    ]
