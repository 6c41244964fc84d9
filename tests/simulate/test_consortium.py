from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
import pytest

from mamori.errors import ConfigError
from mamori.events import EVENT_SCHEMA, FORMATS, LABEL_COLUMNS, join_on_request_id
from mamori.simulate import (
    ATTACK_FAMILIES,
    GATEWAY_EXTENSIONS,
    Consortium,
    SimulationConfig,
    iter_bank_events,
    simulate_consortium,
    simulate_to_disk,
    write_consortium,
)

TINY = SimulationConfig(banks=3, days=2, seed=7, scale=0.004)


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    # Prepare
    a, b = tmp_path / "a", tmp_path / "b"
    # Execute
    write_consortium(simulate_consortium(TINY), a, "nginx")
    write_consortium(simulate_consortium(TINY), b, "nginx")
    # Assert
    files = _files(a)
    assert files == _files(b)
    assert len(files) == 2 + 3 * 4
    for rel in files:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), f"{rel} differs between two runs with one seed"


def test_streaming_writer_matches_the_in_memory_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_consortium(simulate_consortium(TINY), a, "envoy")
    summary = simulate_to_disk(TINY, b, "envoy")
    assert _files(a) == _files(b)
    for rel in _files(a):
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel
    assert summary.equals(simulate_consortium(TINY).summary())


def test_iter_bank_events_matches_simulate_consortium() -> None:
    whole = simulate_consortium(TINY)
    banks = [(p.bank_id, f) for p, f in iter_bank_events(TINY)]
    assert [b for b, _ in banks] == whole.bank_ids
    assert all(f.equals(whole.events[b]) for b, f in banks)


def test_different_seeds_give_different_traffic() -> None:
    one = simulate_consortium(TINY).events["bank-01"]
    two = simulate_consortium(TINY.model_copy(update={"seed": 8})).events["bank-01"]
    assert one.height != two.height or not one.equals(two)
    assert set(one["http.request.id"]).isdisjoint(set(two["http.request.id"]))
    assert one["@timestamp"].head(100).to_list() != two["@timestamp"].head(100).to_list()


def test_frames_follow_the_canonical_schema(week: Consortium) -> None:
    for bank, frame in week.events.items():
        assert frame.schema == pl.Schema(EVENT_SCHEMA)
        assert frame["@timestamp"].is_sorted()
        assert frame["http.request.id"].null_count() == 0
        assert frame["http.request.id"].n_unique() == frame.height
        assert frame["organization.id"].unique().to_list() == [bank]
        for col in ("source.ip", "source.as.number", "source.as.organization.name", "source.geo.country_iso_code",
                    "url.path", "http.request.method", "http.response.status_code", "user_agent.original",
                    "tls.client.ja3", "event.duration", "http.response.body.bytes", "labels.is_attack",
                    "labels.attack_family"):  # fmt: skip
            assert frame[col].null_count() == 0, f"{bank}: {col} has nulls"
        start = pl.datetime(2025, 4, 20, 15, time_zone="UTC")
        assert frame.filter(pl.col("@timestamp") < start).height == 0


def test_labels_are_consistent(week: Consortium) -> None:
    frame = week.all_events()
    benign = frame.filter(~pl.col("labels.is_attack"))
    attack = frame.filter(pl.col("labels.is_attack"))
    assert benign["labels.attack_family"].unique().to_list() == ["benign"]
    assert benign["labels.attack_id"].null_count() == benign.height
    assert benign["labels.campaign_id"].null_count() == benign.height
    assert attack["labels.attack_id"].null_count() == 0
    assert attack["labels.campaign_id"].null_count() == 0
    assert set(attack["labels.attack_family"].unique()) == set(ATTACK_FAMILIES)
    catalogue = {c.campaign_id: c.family for c in week.campaigns}
    pairs = attack.select("labels.campaign_id", "labels.attack_family").unique().rows()
    assert all(catalogue[cid] == fam for cid, fam in pairs)
    assert 0.005 < attack.height / frame.height < 0.5


def test_no_label_leaks_into_observable_columns(week: Consortium) -> None:
    frame = week.all_events()
    campaign_ids = [c.campaign_id for c in week.campaigns]
    for col, dtype in EVENT_SCHEMA.items():
        if col in LABEL_COLUMNS or dtype != pl.String:
            continue
        values = frame[col].drop_nulls()
        assert not values.str.contains("(?i)attack|malicious|campaign").any(), col
        assert not values.is_in(campaign_ids).any(), col


def test_attack_mix_is_non_iid(week: Consortium) -> None:
    per_bank = {
        bank: set(f.filter(pl.col("labels.is_attack"))["labels.attack_family"].unique())
        for bank, f in week.events.items()
    }
    assert len({frozenset(s) for s in per_bank.values()}) == len(per_bank), "every bank sees a different mix"
    for family in ATTACK_FAMILIES:
        seen = [b for b, s in per_bank.items() if family in s]
        assert seen, f"{family} never generated"
    assert any(len([b for b, s in per_bank.items() if f in s]) < len(per_bank) for f in ATTACK_FAMILIES)


def test_bank_populations_differ_tenfold(week: Consortium) -> None:
    sizes = [p.customers for p in week.profiles]
    assert max(sizes) / min(sizes) == pytest.approx(10.0, rel=0.05)
    routes = {b: set(f.filter(pl.col("event.action") == "login")["url.path"].unique()) for b, f in week.events.items()}
    assert len({frozenset(r) for r in routes.values()}) == len(routes), "login routes differ between banks"


def test_campaign_mix_override_removes_and_adds_families() -> None:
    cfg = TINY.model_copy(update={"campaign_mix": {"bank-01": {"scraping": 0.0}, "bank-03": {"sim_swap": 3.0}}})
    c = simulate_consortium(SimulationConfig.model_validate(cfg.model_dump()))
    fams = {b: set(f["labels.attack_family"].unique()) for b, f in c.events.items()}
    assert "scraping" not in fams["bank-01"]
    assert "sim_swap" in fams["bank-03"]


def test_invalid_configs_fail_loudly() -> None:
    with pytest.raises(ValueError, match="family"):
        SimulationConfig(campaign_mix={"bank-01": {"carding": 1.0}})
    with pytest.raises(ConfigError, match="bank-09"):
        simulate_consortium(SimulationConfig(banks=2, scale=0.001, campaign_mix={"bank-09": {"scraping": 1.0}}))
    with pytest.raises(ValueError):
        SimulationConfig(banks=0)
    with pytest.raises(ConfigError, match="scraping"):
        simulate_consortium(
            SimulationConfig(banks=1, days=1, scale=0.001, campaign_params={"scraping": {"interval_s": -1}})
        )
    with pytest.raises(ConfigError, match="format"):
        write_consortium(simulate_consortium(TINY), "/nonexistent-never-written", "syslog")


def test_campaign_params_override_generator_parameters() -> None:
    cfg = SimulationConfig(banks=3, days=1, seed=3, scale=0.004, campaign_params={"scraping": {"interval_s": 1.0}})
    c = simulate_consortium(cfg)
    plan = next(p for p in c.campaigns if p.family == "scraping")
    assert plan.params["interval_s"] == 1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_back_without_quarantine(tmp_path: Path, fmt: str) -> None:
    from mamori.events.readers import read_events

    # Prepare
    consortium = simulate_consortium(TINY)
    # Execute
    paths = write_consortium(consortium, tmp_path, fmt)
    # Assert
    for bank, p in paths.items():
        assert p["gateway"].name == f"gateway.{GATEWAY_EXTENSIONS[fmt]}"
        original = consortium.events[bank]
        gw = read_events(p["gateway"], fmt)
        app = read_events(p["app_events"], "ecs")
        assert gw.summary.quarantined == 0, gw.summary
        assert app.summary.quarantined == 0, app.summary
        assert gw.frame.height == original.height
        assert gw.frame["labels.is_attack"].null_count() == gw.frame.height, "ground truth leaked into the log"
        joined = join_on_request_id(gw.frame, app.frame)
        assert joined.height == original.height
        truth = pl.read_csv(p["truth"], schema_overrides={"labels.attack_id": pl.String})
        assert truth.height == original.height
        back = joined.drop(LABEL_COLUMNS).join(truth, on="http.request.id", how="left")
        want = original.select("http.request.id", "user.id", "session.id", "event.action", "source.ip",
                               "url.path", "http.response.status_code", "labels.is_attack")  # fmt: skip
        got = back.select(want.columns)
        assert got.sort("http.request.id").equals(want.sort("http.request.id"))
