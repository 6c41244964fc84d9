from __future__ import annotations

import time

import pytest

from mamori.errors import IntelError
from mamori.intel import (
    OAT_CATALOG,
    TLP_LEVELS,
    TLP_MARKINGS,
    asn_indicator,
    attack_pattern,
    campaign,
    domain_indicator,
    identity,
    indicator,
    ip_indicator,
    merge,
    parse_object,
    relationship,
    serialize,
    sighting,
    tlp_of,
    tls_fingerprint_indicator,
    url_indicator,
    user_agent_indicator,
    validate_object,
)

BANK = identity("Bank A")


def every_builder() -> list[object]:
    ind = ip_indicator("203.0.113.5", created_by=BANK, confidence=80, valid_until="2030-01-01T00:00:00Z")
    ap = attack_pattern("OAT-008")
    return [
        BANK, ind, ip_indicator("2001:db8::1"), ip_indicator("198.51.100.0/24"), asn_indicator("AS64500"),
        user_agent_indicator("python-requests/2.31 'quoted' \\ back"), tls_fingerprint_indicator("e7d705a3" * 4),
        tls_fingerprint_indicator("t13d1516h2_8daaf6152771_02713d6af862", kind="ja4"),
        url_indicator("https://bank-a-login.example/signin?x='1'"), domain_indicator("Bank-A-Login.example."),
        sighting(ind, observed_by=BANK, count=3), ap, campaign("Proxy pool wave", created_by=BANK),
        relationship(ind, "indicates", ap, created_by=BANK), *TLP_MARKINGS.values(),
    ]


def test_every_builder_passes_stix2_validator() -> None:
    for obj in every_builder():
        assert validate_object(obj) == [], obj["id"]  # type: ignore[index]


def test_tlp_markings_are_the_tlp_2_0_definitions() -> None:
    assert TLP_LEVELS == ("clear", "green", "amber", "amber+strict", "red")
    assert TLP_MARKINGS["amber+strict"].id == "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    assert TLP_MARKINGS["clear"].name == "TLP:CLEAR"
    for level in TLP_LEVELS:
        assert tlp_of(ip_indicator("192.0.2.1", tlp=level)) == level
    assert tlp_of(ip_indicator("192.0.2.1", tlp=None)) is None
    assert tlp_of({"object_marking_refs": ["marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"]}) == "clear"
    both = {"object_marking_refs": [TLP_MARKINGS["green"].id, TLP_MARKINGS["red"].id]}
    assert tlp_of(both) == "red"


def test_patterns() -> None:
    assert ip_indicator("203.0.113.5").pattern == "[ipv4-addr:value = '203.0.113.5']"
    assert ip_indicator("2001:db8::1").pattern == "[ipv6-addr:value = '2001:db8::1']"
    assert asn_indicator(64500).pattern == "[autonomous-system:number = 64500]"
    assert domain_indicator("Bank-A-Login.example.").pattern == "[domain-name:value = 'bank-a-login.example']"
    assert "\\'quoted\\'" in user_agent_indicator("x 'quoted'").pattern


def test_indicator_fields_and_ids() -> None:
    a = ip_indicator("203.0.113.5", created_by=BANK, confidence=80, valid_until="2030-01-01T00:00:00Z")
    b = ip_indicator("203.0.113.5", created_by=BANK, confidence=10)
    c = ip_indicator("203.0.113.5", created_by=identity("Bank B"))
    assert a.id == b.id != c.id
    assert a.confidence == 80 and str(a.valid_until).startswith("2030-01-01")
    assert a.created_by_ref == BANK.id


def test_attack_pattern_references() -> None:
    ap = serialize(attack_pattern("oat-008"))
    refs = {(r["source_name"], r["external_id"]) for r in ap["external_references"]}
    assert refs == {("owasp-automated-threats", "OAT-008"), ("capec", "CAPEC-600")}
    assert ap["name"] == "OAT-008 Credential Stuffing"
    assert "OAT-007" in OAT_CATALOG
    custom = serialize(attack_pattern("OAT-099", description="new threat", capec_ids=["112"]))
    assert ("capec", "CAPEC-112") in {(r["source_name"], r["external_id"]) for r in custom["external_references"]}


@pytest.mark.parametrize("call", [
    lambda: ip_indicator("999.1.1.1"),
    lambda: asn_indicator("ASxyz"),
    lambda: asn_indicator(0),
    lambda: url_indicator("not a url"),
    lambda: domain_indicator("a b"),
    lambda: user_agent_indicator(""),
    lambda: tls_fingerprint_indicator("x", kind="ja5"),
    lambda: indicator("[ipv4-addr:value = ]", name="bad"),
    lambda: ip_indicator("192.0.2.1", confidence=101),
    lambda: ip_indicator("192.0.2.1", valid_from="2030-01-01T00:00:00Z", valid_until="2020-01-01T00:00:00Z"),
    lambda: ip_indicator("192.0.2.1", tlp="purple"),
    lambda: attack_pattern("OAT-999"),
    lambda: parse_object({"hello": "world"}),
    lambda: parse_object({"type": "indicator", "spec_version": "2.1", "id": "indicator--x"}),
    lambda: parse_object([1, 2]),  # type: ignore[arg-type]
])
def test_bad_input_raises_intel_error(call: object) -> None:
    with pytest.raises(IntelError):
        call()  # type: ignore[operator]


def test_merge_makes_new_versions_and_accumulates_sightings() -> None:
    old = ip_indicator("203.0.113.5", created_by=BANK, confidence=60)
    assert merge(None, old) is old
    assert merge(old, ip_indicator("203.0.113.5", created_by=BANK, confidence=60)) is None
    new = merge(old, ip_indicator("203.0.113.5", created_by=BANK, confidence=95))
    assert new.id == old.id and new.created == old.created and new.modified > old.modified
    assert new.confidence == 95 and new.valid_from == old.valid_from
    s1 = sighting(old, observed_by=BANK, count=3, first_seen="2026-01-02T00:00:00Z", last_seen="2026-01-03T00:00:00Z")
    time.sleep(0.002)
    s2 = sighting(old, observed_by=BANK, count=4, first_seen="2026-01-01T00:00:00Z", last_seen="2026-01-02T00:00:00Z")
    s3 = merge(s1, s2)
    assert s3.id == s1.id and s3.count == 7
    assert str(s3.first_seen).startswith("2026-01-01") and str(s3.last_seen).startswith("2026-01-03")
    assert validate_object(s3) == [] and validate_object(new) == []
    with pytest.raises(IntelError, match="ids differ"):
        merge(old, ip_indicator("203.0.113.6"))


def _corpus() -> list[dict]:
    good = [serialize(o) for o in every_builder()]
    ind = serialize(ip_indicator("203.0.113.5"))
    bad = [
        dict(ind, pattern="[ipv4-addr:value = ]"),
        dict(ind, pattern="[file:hashes.'SHA-256' = 'abc']"),
        dict(ind, pattern="[unknown_type:value = '1']"),
        dict(ind, pattern="[ipv4-addr:Bad-Prop = '1']"),
        dict(ind, pattern="[ipv4-addr:value IN ('1', '2')]"),
        dict(ind, created="2026-01-01T00:00:00+09:00"),
        dict(ind, id="indicator--1234"),
        dict(ind, confidence=150),
        {k: v for k, v in ind.items() if k != "valid_from"},
        dict(serialize(sighting(ind["id"], observed_by=BANK)), count=-1),
        dict(serialize(attack_pattern("OAT-008")), external_references=[{"external_id": "x"}]),
        # Edge cases of the fast path (mamori.intel._validator): timestamps dateutil rejects although they
        # match the validator's pattern, formats, regex corner cases, numbers.
        dict(ind, created="2026-02-30T00:00:00Z", modified="2026-02-30T00:00:00Z"),
        dict(ind, created="2023-02-29T00:00:00.000Z", modified="2023-02-29T00:00:00.000Z"),
        dict(ind, valid_until="2031-04-31T00:00:00Z"),
        dict(ind, valid_from="0000-01-01T00:00:00Z"),
        dict(ind, valid_until="2040-01-01T00:00:60Z"),
        dict(ind, id=ind["id"] + "\n"),
        dict(ind, created_by_ref=BANK.id + "\n"),
        dict(ind, confidence="80"),
        dict(ind, modified="2001-01-01T00:00:00Z"),
        dict(ind, Bad_Prop=1),
        dict(ind, lang=5),
        dict(ind, kill_chain_phases=[{"kill_chain_name": "x"}]),
        dict(ind, object_marking_refs=["marking-definition--nope"]),
        dict(ind, granular_markings=[{"marking_ref": TLP_MARKINGS["red"].id, "selectors": ["no_such_field"]}]),
        dict(serialize(attack_pattern("OAT-008")),
             external_references=[{"source_name": "x", "url": "not a uri at all"}]),
        dict(serialize(attack_pattern("OAT-008")), external_references=[{"source_name": "x", "url": "http://"}]),
        dict(serialize(sighting(ind["id"], observed_by=BANK)), first_seen="2026-13-01T00:00:00Z"),
        dict(serialize(campaign("c")), first_seen="2026-06-01T00:00:00Z", last_seen="2026-05-01T00:00:00Z"),
        dict(serialize(relationship(ind, "indicates", serialize(attack_pattern("OAT-008")))), relationship_type="X Y"),
    ]
    edge_ok = [
        dict(ind, created="2024-02-29T23:59:59.123456789Z", modified="2024-02-29T23:59:59.123456789Z"),
        dict(ind, valid_until="2040-01-01T00:00:00.1234567890123Z"),
        dict(ind, confidence=80.0),
        dict(ind, x_mamori_note="custom properties are allowed"),
        dict(serialize(attack_pattern("OAT-008")),
             external_references=[{"source_name": "x", "url": "https://owasp.org/www-project-automated-threats/"}]),
    ]
    return good + bad + edge_ok


def test_fast_validation_matches_stix2_validator() -> None:
    fast = [bool(validate_object(o)) for o in _corpus()]
    fast_again = [bool(validate_object(o)) for o in _corpus()]  # now from the pattern-shape cache
    reference = [_stock_verdict(o) for o in _corpus()]
    assert fast == fast_again == reference
    assert sum(reference) >= 10  # the invalid half really is invalid


def _stock_verdict(obj: dict) -> bool:
    """True when stock stix2-validator (uncached schemas) finds an error (or fails) on the object."""
    import stix2validator.validator as sv
    from stix2validator import ValidationOptions, validate_instance

    patched = sv.load_validator
    sv.load_validator = getattr(patched, "_mamori_original", patched)
    try:
        return not validate_instance(obj, ValidationOptions(version="2.1")).is_valid
    except Exception:  # noqa: BLE001 - the stock validator raises on some garbage: that is a rejection too
        return True
    finally:
        sv.load_validator = patched


def test_fast_valid_verdict_is_used_and_never_accepts_what_the_validator_rejects() -> None:
    import random

    from mamori.intel._validator import certainly_valid

    good = [serialize(o) for o in every_builder()]
    # The fast path is really in use on this install (not silently falling back to the slow one).
    assert all(certainly_valid(dict(o, pattern_type="checked") if o["type"] == "indicator" else o) for o in good)
    # Seeded random mutations: whenever the fast path says "valid", the stock validator must agree.
    rng = random.Random(11)
    values = ["", "x", 0, -1, 101, 2.5, None, True, [], {}, ["x"], "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
              "2026-01-01T00:00:00.5Z", "2026-01-01 00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z",
              "2026-01-01T00:00:00.1234567Z", "2035-02-30T00:00:00Z", "1999-01-01T00:00:00Z", BANK.id, "indicator--1",
              "http://example.com/", "not a url", "Z" * 300]
    keys = ["created", "modified", "valid_from", "valid_until", "confidence", "labels", "name", "lang", "revoked",
            "id", "created_by_ref", "object_marking_refs", "external_references", "first_seen", "last_seen",
            "count", "spec_version", "type", "where_sighted_refs", "sighting_of_ref", "x_custom", "Bad-Key"]
    checked = accepted = 0
    for _ in range(300):
        obj = dict(rng.choice(good))
        for _ in range(rng.randint(1, 2)):
            key = rng.choice(keys)
            if rng.random() < 0.15:
                obj.pop(key, None)
            else:
                obj[key] = rng.choice(values)
        if obj.get("type") == "indicator":
            obj["pattern_type"] = "checked"  # as validate_object passes it (pattern checked separately)
        if certainly_valid(obj):
            accepted += 1
            assert not _stock_verdict(obj), obj
        checked += 1
    assert checked == 300 and accepted > 0
