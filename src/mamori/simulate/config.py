"""Configuration of a simulated consortium, and the profile of each simulated bank."""

from __future__ import annotations

import datetime as dt
import math

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mamori.errors import ConfigError

__all__ = ["ATTACK_FAMILIES", "BankProfile", "SimulationConfig", "default_bank_profiles"]

#: Every attack family the simulator emits, as written to ``labels.attack_family``.
ATTACK_FAMILIES: tuple[str, ...] = (
    "credential_stuffing",
    "credential_stuffing_low_slow",
    "password_spraying",
    "aitm_phishing",
    "sim_swap",
    "infostealer_replay",
    "scraping",
    "bola_enumeration",
    "injection",
    "fake_accounts",
    "brokerage_pump",
)


class SimulationConfig(BaseModel):
    """What to simulate: how many banks, how long, how big, and which campaigns hit whom.

    Parameters
    ----------
    banks : int, default=5
        Number of member banks (``bank-01`` ...). Customer populations shrink geometrically from the first
        bank to the last, the largest 10 times the smallest (for 2 banks or more).
    days : int, default=7
        Length of the simulated period, starting at ``start`` 00:00 JST.
    seed : int, default=1
        Seed of every random choice; the same config gives byte-identical output.
    start : datetime.date, default=2025-04-21
        First simulated day (JST). The default week contains the April 2025 payday (Friday the 25th).
    scale : float, default=1.0
        Multiplier on every bank's customer count. At 1.0 the five default banks have 425,000 customers and
        produce about 6 million requests a week; tests use 0.01 or less.
    attack_scale : float, default=1.0
        Multiplier on the intensity of every campaign (0 gives benign traffic only).
    campaign_mix : dict of str to dict of str to float, default={}
        Per-bank overrides of campaign intensity: ``{"bank-02": {"sim_swap": 0.0, "scraping": 2.0}}``.
        0 removes the family from that bank; families not named keep the bank's default intensity.
    campaign_params : dict of str to dict, default={}
        Per-family overrides of the generator parameters, e.g. ``{"scraping": {"interval_s": 1.0}}``
        (field names of the generator classes in :mod:`mamori.simulate.campaigns`).
    waves : int, default=1
        How many times each campaign family runs per bank: the period is cut into ``waves`` equal segments
        and every family gets one campaign (new id, new infrastructure) in each, so a train/test split in
        time sees every family on both sides when ``waves >= 2``.
    aggregators : bool, default=True
        Simulate legitimate account aggregators (consented personal-finance apps polling from cloud ASNs),
        benign traffic that looks a little like scraping.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    banks: int = Field(5, ge=1, le=64)
    days: int = Field(7, ge=1, le=90)
    seed: int = Field(1, ge=0)
    start: dt.date = dt.date(2025, 4, 21)
    scale: float = Field(1.0, gt=0.0, le=20.0)
    attack_scale: float = Field(1.0, ge=0.0, le=50.0)
    campaign_mix: dict[str, dict[str, float]] = Field(default_factory=dict)
    campaign_params: dict[str, dict[str, object]] = Field(default_factory=dict)
    waves: int = Field(1, ge=1, le=10)
    aggregators: bool = True

    @field_validator("campaign_mix")
    @classmethod
    def _known_families(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for bank, mix in value.items():
            for family, intensity in mix.items():
                if family not in ATTACK_FAMILIES:
                    raise ValueError(
                        f"campaign_mix[{bank!r}] names family {family!r}; expected one of {list(ATTACK_FAMILIES)}"
                    )
                if intensity < 0 or not math.isfinite(intensity):
                    raise ValueError(f"campaign_mix[{bank!r}][{family!r}] must be a finite number >= 0")
        return value

    @field_validator("campaign_params")
    @classmethod
    def _known_param_families(cls, value: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
        for family in value:
            if family not in ATTACK_FAMILIES:
                raise ValueError(f"campaign_params names family {family!r}; expected one of {list(ATTACK_FAMILIES)}")
        return value


class BankProfile(BaseModel):
    """One simulated member bank: its size, clients, routes and the attacks it sees.

    Parameters
    ----------
    bank_id : str
        ``bank-01`` ...; written to ``organization.id``.
    name : str
        Display name (fictional).
    index : int
        0-based position; selects the route vocabulary and API version.
    customers : int
        Customer population after scaling.
    domain : str
        API host (``url.domain``).
    app_name, app_version : str
        The bank's mobile app as it appears in its user agent.
    app_share : float
        Share of customers whose primary client is the mobile app (the rest use a browser).
    brokerage : bool
        Whether the bank offers securities trading (portfolio, quotes, orders).
    transfer_limit : float
        Daily transfer limit in JPY; takeovers aim just below it.
    bola_vulnerable_share : float
        Share of foreign account ids the object-level check wrongly lets through (the BOLA "hits").
    campaign_mix : dict of str to float
        Family -> intensity (0 or absent: the bank never sees that family).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    bank_id: str
    name: str
    index: int
    customers: int
    domain: str
    app_name: str
    app_version: str
    app_share: float
    brokerage: bool
    transfer_limit: float
    bola_vulnerable_share: float
    campaign_mix: dict[str, float]

    def intensity(self, family: str) -> float:
        """Return the intensity of ``family`` at this bank (0 when the bank never sees it)."""
        return float(self.campaign_mix.get(family, 0.0))


# name, domain stem, app name, app share, brokerage, transfer limit, BOLA-vulnerable share
_DEFAULTS = (
    ("Hinode Bank", "hinode-bank", "HinodeApp", 0.55, True, 5_000_000.0, 0.0),
    ("Minato Trust Bank", "minato-trust", "MinatoDirect", 0.45, False, 3_000_000.0, 0.02),
    ("Kumo Net Bank", "kumo-netbank", "KumoBank", 0.80, True, 10_000_000.0, 0.0),
    ("Tsubasa Regional Bank", "tsubasa-bank", "TsubasaMobile", 0.35, False, 2_000_000.0, 0.05),
    ("Kabuto Securities Bank", "kabuto-sec", "KabutoTrade", 0.65, True, 5_000_000.0, 0.0),
)
# family -> intensity per default bank (0: never seen there). Non-IID on purpose.
_MIX: dict[str, tuple[float, ...]] = {
    "credential_stuffing": (1.0, 0.5, 0.0, 1.5, 0.0),
    "credential_stuffing_low_slow": (1.0, 1.0, 1.0, 1.0, 0.0),
    "password_spraying": (0.5, 1.0, 0.0, 0.0, 1.0),
    "aitm_phishing": (1.5, 1.0, 0.5, 0.0, 1.0),
    "sim_swap": (0.0, 1.0, 1.0, 0.5, 0.0),
    "infostealer_replay": (1.0, 0.0, 1.0, 1.0, 0.5),
    "scraping": (1.0, 0.0, 0.5, 0.0, 1.0),
    "bola_enumeration": (0.0, 1.0, 0.0, 1.0, 0.5),
    "injection": (1.0, 1.0, 1.0, 0.3, 2.0),
    "fake_accounts": (0.0, 0.0, 1.5, 1.0, 1.0),
    "brokerage_pump": (1.0, 0.0, 0.0, 0.0, 1.0),
}
_LARGEST = 200_000
_APP_VERSIONS = ("7.4.2", "5.12.0", "3.28.1", "2.9.6", "4.0.3")


def default_bank_profiles(config: SimulationConfig) -> list[BankProfile]:
    """Return the bank profiles of ``config`` (defaults for the first five banks, generated beyond).

    Parameters
    ----------
    config : SimulationConfig
        Number of banks, scale and campaign-mix overrides.

    Returns
    -------
    list of BankProfile
        One per bank, ``bank-01`` first.

    Raises
    ------
    ConfigError
        If ``campaign_mix`` names a bank that is not simulated.
    """
    n = config.banks
    ids = [f"bank-{i + 1:02d}" for i in range(n)]
    unknown = sorted(set(config.campaign_mix) - set(ids))
    if unknown:
        raise ConfigError(f"SimulationConfig.campaign_mix names banks {unknown}, but only {ids[0]}..{ids[-1]} exist")
    # customer counts: geometric from 200k down to 20k (10x between largest and smallest)
    ratios = [1.0] if n == 1 else [10.0 ** (-i / (n - 1)) for i in range(n)]
    profiles = []
    for i, bank_id in enumerate(ids):
        name, stem, app, app_share, brokerage, limit, bola = _DEFAULTS[i % len(_DEFAULTS)]
        if i >= len(_DEFAULTS):
            name = f"{name} {i // len(_DEFAULTS) + 1}"
            stem = f"{stem}{i // len(_DEFAULTS) + 1}"
        mix = {fam: vals[i % len(vals)] for fam, vals in _MIX.items()}
        if n < 4:  # keep the cross-bank campaign cross-bank when there are few banks
            mix["credential_stuffing_low_slow"] = 1.0
        mix.update(config.campaign_mix.get(bank_id, {}))
        mix = {fam: v * config.attack_scale for fam, v in mix.items() if v * config.attack_scale > 0}
        if not brokerage:
            mix.pop("brokerage_pump", None)
        customers = max(40, round(_LARGEST * ratios[i] * config.scale))
        profiles.append(
            BankProfile(
                bank_id=bank_id,
                name=name,
                index=i,
                customers=customers,
                domain=f"api.{stem}.example.jp",
                app_name=app,
                app_version=_APP_VERSIONS[i % len(_APP_VERSIONS)],
                app_share=app_share,
                brokerage=brokerage,
                transfer_limit=limit,
                bola_vulnerable_share=bola,
                campaign_mix=mix,
            )
        )
    return profiles
