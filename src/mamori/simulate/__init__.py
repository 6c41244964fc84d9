"""The consortium simulator: realistic retail-banking API traffic for N banks, attack campaigns, ground truth.

``simulate_consortium(SimulationConfig(banks=5, days=7, seed=1))`` returns per-bank canonical event frames
(:data:`mamori.events.EVENT_SCHEMA`), the bank profiles and the campaign catalogue; ``write_consortium``
renders them as gateway logs, application/auth events and ground-truth files. See ``docs/simulator.md``.
"""

from mamori.simulate.campaigns import (
    CAMPAIGN_TYPES,
    AitmPhishing,
    BankTarget,
    BolaEnumeration,
    BrokeragePump,
    Campaign,
    CampaignPlan,
    CredentialStuffing,
    CredentialStuffingLowSlow,
    FakeAccounts,
    InfostealerReplay,
    Injection,
    PasswordSpraying,
    Scraping,
    SimSwap,
    plan_campaigns,
)
from mamori.simulate.config import ATTACK_FAMILIES, BankProfile, SimulationConfig, default_bank_profiles
from mamori.simulate.consortium import (
    APP_EVENT_COLUMNS,
    GATEWAY_EXTENSIONS,
    Consortium,
    app_events,
    iter_bank_events,
    simulate_bank,
    simulate_consortium,
    simulate_to_disk,
    write_bank,
    write_consortium,
)

__all__ = [
    "APP_EVENT_COLUMNS",
    "ATTACK_FAMILIES",
    "CAMPAIGN_TYPES",
    "GATEWAY_EXTENSIONS",
    "AitmPhishing",
    "BankProfile",
    "BankTarget",
    "BolaEnumeration",
    "BrokeragePump",
    "Campaign",
    "CampaignPlan",
    "Consortium",
    "CredentialStuffing",
    "CredentialStuffingLowSlow",
    "FakeAccounts",
    "InfostealerReplay",
    "Injection",
    "PasswordSpraying",
    "Scraping",
    "SimSwap",
    "SimulationConfig",
    "app_events",
    "default_bank_profiles",
    "iter_bank_events",
    "plan_campaigns",
    "simulate_bank",
    "simulate_consortium",
    "simulate_to_disk",
    "write_bank",
    "write_consortium",
]
