import mamori.simulate as sim


def test_public_api_is_pinned() -> None:
    assert sorted(sim.__all__) == sorted([
        "APP_EVENT_COLUMNS", "ATTACK_FAMILIES", "CAMPAIGN_TYPES", "GATEWAY_EXTENSIONS", "AitmPhishing",
        "BankProfile", "BankTarget", "BolaEnumeration", "BrokeragePump", "Campaign", "CampaignPlan", "Consortium",
        "CredentialStuffing", "CredentialStuffingLowSlow", "FakeAccounts", "InfostealerReplay", "Injection",
        "PasswordSpraying", "Scraping", "SimSwap", "SimulationConfig", "app_events", "default_bank_profiles",
        "iter_bank_events",
        "plan_campaigns", "simulate_bank", "simulate_consortium", "simulate_to_disk", "write_bank",
        "write_consortium",
    ])  # fmt: skip
    for name in sim.__all__:
        assert getattr(sim, name) is not None


def test_family_names_are_exact() -> None:
    assert sim.ATTACK_FAMILIES == (
        "credential_stuffing", "credential_stuffing_low_slow", "password_spraying", "aitm_phishing", "sim_swap",
        "infostealer_replay", "scraping", "bola_enumeration", "injection", "fake_accounts", "brokerage_pump",
    )  # fmt: skip
