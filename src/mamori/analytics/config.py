"""Settings of the cross-bank campaign analytics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SKETCH_KINDS", "AnalyticsConfig"]

#: What each member sketches per window (see :func:`mamori.analytics.extract_items`).
SKETCH_KINDS: tuple[str, ...] = ("ip", "net24", "asn", "user_agent", "ja3", "username", "payee")


class AnalyticsConfig(BaseModel):
    """How members sketch, how the consortium sums, and when an item becomes a campaign indicator.

    Parameters
    ----------
    window_minutes : int, default=60
        Length of one analytics window of simulated (or real) time; a round runs at the end of each.
    horizon_hours : float, default=72.0
        Look-back of the presence sketches: an item counts for a bank if the bank saw it within this
        many hours before the window end (low-and-slow campaigns hit banks one after another).
    width : int, default=131072
        Cells per count-min row (a quarter of that for ``net24``).
    small_width : int, default=4096
        Cells per row for the low-cardinality kinds (ASN, user agent, TLS fingerprint, payee).
    depth : int, default=4
        Rows (independent keyed hash functions) per sketch.
    min_banks : int, default=3
        An item is a campaign heavy hitter when at least this many banks saw it (k).
    kinds : tuple of str, default=SKETCH_KINDS
        Which item kinds to sketch.
    indicator_kinds : tuple of str, default=("ip", "net24", "ja3")
        Which flagged kinds become STIX indicators. ASN and user-agent findings are listed in the campaign
        description only by default: a cloud ASN or a common browser string is too broad to block on. Usernames and
        payees are published only as keyed hashes in the campaign description, never in clear.
    net24_min_banks : int, default=4
        k for /24 networks (shared carrier ranges need more banks).
    min_failure_ratio : float, default=0.9
        For ``net24``, ``asn``, ``user_agent`` and ``ja3`` (values every bank sees from its customers too): the
        consortium-wide share of failed logins among that value's logins must reach this.
    min_failures : int, default=20
        ... and the consortium-wide failed logins of that value within the horizon must reach this.
    dp_epsilon : float or None, default=None
        When set, every member adds its share of discrete Gaussian-like noise so that each window's summed
        sketch is (epsilon, dp_delta)-DP per (bank, item) presence. None: no noise.
    dp_delta : float, default=1e-6
        The delta of the per-window guarantee.
    valid_hours : float, default=72.0
        ``valid_until`` of published indicators, after the window in which they were flagged.
    seed : int, default=0
        Seed of the simulation's reproducible parts.
    reproducible_noise : bool, default=False
        Draw the DP noise from ``seed`` so that a run repeats (experiments, the documented benchmarks). False
        (the default, and the only setting for real data) draws it from the operating system's entropy: noise
        that anyone knowing the seed can regenerate voids the guarantee, since it could be subtracted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_minutes: int = Field(60, ge=1, le=24 * 60)
    horizon_hours: float = Field(72.0, gt=0, le=24 * 30)
    width: int = Field(2**17, ge=16, le=2**24)
    small_width: int = Field(4096, ge=16, le=2**24)
    depth: int = Field(4, ge=1, le=8)
    min_banks: int = Field(3, ge=2, le=64)
    kinds: tuple[str, ...] = SKETCH_KINDS
    indicator_kinds: tuple[str, ...] = ("ip", "net24", "ja3")
    net24_min_banks: int = Field(4, ge=2, le=64)
    min_failure_ratio: float = Field(0.9, ge=0, le=1)
    min_failures: int = Field(20, ge=1)
    dp_epsilon: float | None = Field(None, gt=0)
    dp_delta: float = Field(1e-6, gt=0, lt=1)
    valid_hours: float = Field(72.0, gt=0)
    seed: int = Field(0, ge=0)
    reproducible_noise: bool = False
