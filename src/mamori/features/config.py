"""Settings of the feature extractor."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FeatureConfig", "DEFAULT_HOSTING_ASNS", "DEFAULT_HOSTING_KEYWORDS"]

#: Autonomous systems of large hosting / cloud providers (public knowledge, not customer data).
DEFAULT_HOSTING_ASNS: frozenset[int] = frozenset(
    {
        16509,  # Amazon AWS
        14618,  # Amazon AWS
        15169,  # Google
        396982,  # Google Cloud
        8075,  # Microsoft Azure
        14061,  # DigitalOcean
        16276,  # OVH
        24940,  # Hetzner
        63949,  # Linode / Akamai
        20473,  # Vultr / Choopa
        9009,  # M247
        60781,  # LeaseWeb
        28753,  # LeaseWeb
        45102,  # Alibaba Cloud
        132203,  # Tencent Cloud
        31898,  # Oracle Cloud
        36352,  # ColoCrossing
        51167,  # Contabo
        212238,  # Datacamp / CDN77
        53667,  # FranTech / BuyVM
        2914,  # NTT (transit / hosting)
        7506,  # GMO Internet (JP hosting)
        9371,  # Sakura Internet (JP hosting)
        131965,  # Sakura / IDC Frontier
        4694,  # IDC Frontier
    }
)

#: Words in ``source.as.organization.name`` that mark a hosting / cloud provider.
DEFAULT_HOSTING_KEYWORDS: tuple[str, ...] = (
    "amazon",
    "aws",
    "google cloud",
    "microsoft",
    "azure",
    "digitalocean",
    "ovh",
    "hetzner",
    "linode",
    "vultr",
    "choopa",
    "m247",
    "leaseweb",
    "alibaba",
    "tencent",
    "oracle",
    "contabo",
    "hosting",
    "datacenter",
    "data center",
    "cloud",
    "vps",
)

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")


class FeatureConfig(BaseModel):
    """How events become feature matrices. Every member of a consortium must use the same config.

    Parameters
    ----------
    timezone : str, default="Asia/Tokyo"
        Local time zone for hour-of-day features.
    short_window : str, default="5m"
        Short sliding window (``<int><s|m|h|d>``) for request rates.
    long_window : str, default="1h"
        Long sliding window for failure ratios and distinct counts.
    day_window : str, default="24h"
        Day-long window for slow distinct counts (users per IP, IPs per username).
    regularity_events : int, default=10
        Number of most recent inter-arrival gaps used for the regularity (coefficient of variation) features.
    path_hash_buckets : int, default=32
        Width of the hashed character n-gram block of the normalised URL path (0 disables it).
    payload_hash_buckets : int, default=64
        Width of the hashed character n-gram block of the decoded query string and body (0 disables it).
    ngram_sizes : tuple of int, default=(3,)
        Character n-gram sizes hashed into the n-gram blocks.
    hash_seed : int, default=0
        Seed of the n-gram hash; the consortium shares it so that all members' columns mean the same.
    never_seconds : float, default=2592000.0
        Value of "seconds since X" features when X never happened (30 days).
    hosting_asns : frozenset of int
        AS numbers treated as hosting / cloud providers.
    hosting_keywords : tuple of str
        Lower-case words in the AS organisation name that mark a hosting provider.
    include_lexical : bool, default=True
        Include the per-request lexical block.
    include_behaviour : bool, default=True
        Include the per-entity windowed behaviour blocks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "Asia/Tokyo"
    short_window: str = "5m"
    long_window: str = "1h"
    day_window: str = "24h"
    regularity_events: int = Field(default=10, ge=3, le=1000)
    path_hash_buckets: int = Field(default=32, ge=0, le=4096)
    payload_hash_buckets: int = Field(default=64, ge=0, le=4096)
    ngram_sizes: tuple[int, ...] = (3,)
    hash_seed: int = Field(default=0, ge=0, lt=2**32)
    never_seconds: float = Field(default=30 * 86400.0, gt=0)
    hosting_asns: frozenset[int] = DEFAULT_HOSTING_ASNS
    hosting_keywords: tuple[str, ...] = DEFAULT_HOSTING_KEYWORDS
    include_lexical: bool = True
    include_behaviour: bool = True

    @field_validator("short_window", "long_window", "day_window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"window must look like '30s', '5m', '1h' or '1d'; got {value!r}")
        return value

    @field_validator("ngram_sizes")
    @classmethod
    def _check_ngrams(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(n < 1 or n > 8 for n in value):
            raise ValueError(f"ngram_sizes must be a non-empty tuple of ints in [1, 8]; got {value!r}")
        return value

    def window_seconds(self, window: str) -> float:
        """Return the length of a window string such as ``"5m"`` in seconds.

        Parameters
        ----------
        window : str
            ``<int><s|m|h|d>``.

        Returns
        -------
        float
            Seconds.
        """
        match = _DURATION.match(window)
        if match is None:  # pragma: no cover - validated on construction
            raise ValueError(f"bad window {window!r}")
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return float(int(match.group(1)) * unit)
