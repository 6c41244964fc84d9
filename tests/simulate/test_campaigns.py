"""Each campaign leaves the trace docs/simulator.md says it leaves."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mamori.simulate import (
    CAMPAIGN_TYPES,
    Consortium,
    CredentialStuffingLowSlow,
    SimulationConfig,
    simulate_consortium,
)


def _family(week: Consortium, family: str) -> pl.DataFrame:
    return week.all_events().filter(pl.col("labels.attack_family") == family)


def test_low_and_slow_never_exceeds_two_failures_per_ip_hour_yet_spans_three_banks(week: Consortium) -> None:
    # Prepare
    low = _family(week, "credential_stuffing_low_slow")
    failures = low.filter((pl.col("event.action") == "login") & (pl.col("event.outcome") == "failure"))
    # Execute
    per_ip_hour = failures.group_by(
        "organization.id", "source.ip", pl.col("@timestamp").dt.truncate("1h").alias("hour")
    ).len()
    # sliding 60-minute windows, not only clock hours
    worst_sliding = (
        failures.sort("@timestamp")
        .rolling("@timestamp", period="60m", group_by=["organization.id", "source.ip"])
        .agg(pl.len().alias("n"))["n"]
        .max()
    )
    banks_per_ip = low.group_by("source.ip").agg(pl.col("organization.id").n_unique().alias("banks"))
    # Assert
    assert per_ip_hour["len"].max() <= 2
    assert worst_sliding is not None and worst_sliding <= 2
    assert low["organization.id"].n_unique() >= 3
    assert banks_per_ip["banks"].max() >= 3
    assert (banks_per_ip["banks"] >= 3).sum() >= 50, "many proxy exits are shared by three banks or more"
    # the same combo list at every bank
    names = low.group_by("user.name").agg(pl.col("organization.id").n_unique().alias("banks"))
    assert (names["banks"] >= 3).mean() > 0.3  # type: ignore[operator]


def test_low_and_slow_is_staggered_across_banks(week: Consortium) -> None:
    plan = next(p for p in week.campaigns if p.family == "credential_stuffing_low_slow")
    starts = sorted(t.start for t in plan.targets.values())
    assert len(starts) >= 3
    assert all((b - a).total_seconds() >= 3600 for a, b in zip(starts, starts[1:], strict=False))


def test_low_and_slow_holds_at_full_intensity() -> None:
    cfg = SimulationConfig(banks=4, days=3, seed=5, scale=0.002, campaign_mix={f"bank-0{i}": {
        "credential_stuffing_low_slow": 400.0} for i in range(1, 5)})  # fmt: skip
    c = simulate_consortium(cfg)
    low = c.all_events().filter(pl.col("labels.attack_family") == "credential_stuffing_low_slow")
    fails = low.filter(pl.col("event.outcome") == "failure", pl.col("event.action") == "login")
    assert fails.height > 5_000
    assert fails.group_by("organization.id", "source.ip").len()["len"].max() <= 2


def test_burst_stuffing_comes_from_few_ips_with_mismatched_fingerprints(week: Consortium) -> None:
    burst = _family(week, "credential_stuffing")
    per_bank = burst.group_by("organization.id").agg(
        pl.col("source.ip").n_unique().alias("ips"), pl.col("user.name").n_unique().alias("users")
    )
    assert (per_bank["ips"] <= 4).all()
    assert (per_bank["users"] > 20 * per_bank["ips"]).all()
    logins = burst.filter(pl.col("event.action") == "login")
    assert (logins["event.outcome"] == "failure").mean() > 0.9  # type: ignore[operator]
    # browser user agents over a scripted TLS stack
    assert logins["user_agent.original"].str.contains("Mozilla").mean() > 0.9  # type: ignore[operator]
    benign = week.all_events().filter(~pl.col("labels.is_attack"))
    browser_ja3 = set(benign.filter(pl.col("user_agent.original").str.contains("Chrome/"))["tls.client.ja3"])
    assert set(logins["tls.client.ja3"]).isdisjoint(browser_ja3)


def test_spraying_tries_each_user_once_per_round_from_many_ips(week: Consortium) -> None:
    spray = _family(week, "password_spraying").filter(pl.col("event.action") == "login")
    per_user = spray.group_by("organization.id", "user.name").len()
    assert per_user["len"].median() <= 3  # type: ignore[operator]
    assert spray["source.ip"].n_unique() >= 20
    assert (spray["http.response.status_code"] == 423).any(), "brute-forced accounts get locked"


def test_aitm_sessions_drift_to_another_address_then_pay_a_mule(week: Consortium) -> None:
    aitm = _family(week, "aitm_phishing")
    sessions = (
        aitm.filter(pl.col("session.id").is_not_null())
        .group_by("session.id")
        .agg(
            pl.col("source.ip").n_unique().alias("ips"),
            pl.col("source.as.number").first().alias("first_asn"),
            (pl.col("event.action") == "transfer").any().alias("paid"),
            ((pl.col("@timestamp").max() - pl.col("@timestamp").min()).dt.total_minutes()).alias("minutes"),
        )
    )
    assert (sessions["ips"] == 2).all()
    hosting = {16509, 14061, 20473, 63949, 24940, 16276, 9370, 7506, 45102, 132203}
    assert sessions["first_asn"].is_in(list(hosting)).all()
    paid = sessions.filter(pl.col("paid"))
    assert paid.height > 0 and paid["minutes"].median() < 60  # type: ignore[operator]
    payees = aitm.filter(pl.col("event.action") == "transfer")["banking.payee.id"]
    assert payees.n_unique() < payees.len(), "mule accounts receive from several victims"


def test_sim_swap_changes_contact_and_device_before_a_night_transfer_near_the_limit(week: Consortium) -> None:
    swap = _family(week, "sim_swap")
    limits = {p.bank_id: p.transfer_limit for p in week.profiles}
    for _, victim in swap.group_by("labels.attack_id"):
        actions = victim.sort("@timestamp")["event.action"].drop_nulls().to_list()
        assert actions[0] == "password_reset"
        assert actions.index("contact_change") < actions.index("transfer")
        assert actions.index("device_register") < actions.index("transfer")
        transfer = victim.filter(pl.col("event.action") == "transfer")
        bank = victim["organization.id"][0]
        assert transfer["banking.amount"][0] >= 0.85 * limits[bank] - 1000
    hours = swap.select(pl.col("@timestamp").dt.convert_time_zone("Asia/Tokyo").dt.hour())["@timestamp"]
    assert hours.is_between(1, 5).all()


def test_infostealer_logins_succeed_first_try_from_abroad(week: Consortium) -> None:
    steal = _family(week, "infostealer_replay")
    logins = steal.filter(pl.col("event.action") == "login")
    assert (logins["event.outcome"] == "success").all()
    assert (logins["source.geo.country_iso_code"] != "JP").mean() > 0.8  # type: ignore[operator]


def test_scraping_is_periodic(week: Consortium) -> None:
    scrape = _family(week, "scraping").filter(pl.col("event.action").is_null())
    gaps = (
        scrape.sort("@timestamp")
        .group_by("session.id")
        .agg(pl.col("@timestamp").diff().dt.total_milliseconds().drop_nulls().alias("gap"))
        .explode("gap")["gap"]
        .to_numpy()
        .astype(float)
    )
    assert gaps.size > 100
    assert np.std(gaps) / np.mean(gaps) < 0.25  # far more regular than humans (lognormal think times)


def test_bola_walks_foreign_account_ids_and_gets_mostly_403_404(week: Consortium) -> None:
    bola = _family(week, "bola_enumeration").filter(pl.col("event.action").is_null())
    per_token = bola.group_by("session.id").agg(pl.col("url.path").n_unique().alias("paths"))
    assert (per_token["paths"] > 20).all()
    assert bola["http.response.status_code"].is_in([403, 404]).mean() > 0.8  # type: ignore[operator]


def test_injection_carries_payloads(week: Consortium) -> None:
    inj = _family(week, "injection")
    text = pl.concat_str(
        [pl.col("url.path"), pl.col("url.query").fill_null(""), pl.col("http.request.body.content").fill_null("")]
    )
    marker = (
        r"(?i)(select|union|script|onerror|drop|\.\.|%2e%2e|passwd|sleep|jndi|\{\{|\$\{|\$\(|%24|%27|%22|%3C|%7B|"
        r"'|<|\$ne|admin|\.env|\.git|wp-login|phpmyadmin|actuator|server-status|backup|config|credentials|graphql|"
        r"swagger|console|cgi-bin|phpunit)"
    )
    hits = inj.select(text.str.contains(marker).alias("hit"))["hit"]
    assert hits.mean() > 0.9  # type: ignore[operator]
    assert (inj["http.response.status_code"] >= 400).mean() > 0.7  # type: ignore[operator]


def test_fake_accounts_share_devices_and_templated_emails(week: Consortium) -> None:
    fake = _family(week, "fake_accounts").filter(pl.col("event.action") == "signup")
    per_device = fake.group_by("organization.id", "device.id").agg(pl.col("user.name").n_unique().alias("apps"))
    assert per_device["apps"].max() >= 5  # type: ignore[operator]
    stems = fake["user.name"].str.replace(r"\d+@.*$", "").n_unique()
    assert stems <= fake["organization.id"].n_unique()


def test_brokerage_pump_buys_one_ticker_across_accounts_and_banks(week: Consortium) -> None:
    pump = _family(week, "brokerage_pump")
    buys = pump.filter((pl.col("event.action") == "trade") & pl.col("http.request.body.content").str.contains("buy"))
    assert buys["banking.instrument"].n_unique() == 1
    assert buys["user.id"].n_unique() >= 2
    assert buys["organization.id"].n_unique() >= 2
    span = buys["@timestamp"].max() - buys["@timestamp"].min()  # type: ignore[operator]
    assert span.total_seconds() < 2 * 3600
    hour = buys.select(pl.col("@timestamp").dt.convert_time_zone("Asia/Tokyo").dt.hour())["@timestamp"]
    assert hour.is_between(9, 15).all(), "during Tokyo Stock Exchange hours"


def test_every_family_has_a_named_generator_with_parameters() -> None:
    for family, cls in CAMPAIGN_TYPES.items():
        assert cls.family == family
        assert cls.__doc__ and "Trace" in cls.__doc__ or "Per victim" in (cls.__doc__ or "")
        assert cls.model_fields, cls.__name__
    with pytest.raises(ValueError):
        CredentialStuffingLowSlow(max_tries_per_ip=3)


def test_waves_put_every_family_in_every_segment_of_the_period() -> None:
    cfg = SimulationConfig(banks=3, days=4, seed=2, scale=0.004, waves=2)
    c = simulate_consortium(cfg)
    frame = c.all_events().filter(pl.col("labels.is_attack"))
    middle = pl.datetime(2025, 4, 22, 15, time_zone="UTC")  # 2025-04-23 00:00 JST
    first = set(frame.filter(pl.col("@timestamp") < middle)["labels.attack_family"].unique())
    second = set(frame.filter(pl.col("@timestamp") >= middle)["labels.attack_family"].unique())
    families = {p.family for p in c.campaigns}
    assert first == families and second == families
    assert len({p.campaign_id for p in c.campaigns}) == 2 * len(families)
