from __future__ import annotations

import json
import uuid

import pytest

from mamori.intel import identity, ip_indicator, serialize, validate_object
from mamori.intel.taxii import BadRequestError, TaxiiConfig
from mamori.intel.taxii.ingest import parse_envelope

MODES = [TaxiiConfig(validation="full"), TaxiiConfig(validation="library")]


def good() -> dict:
    return serialize(ip_indicator(f"192.0.2.{uuid.uuid4().int % 250}", created_by=identity("Bank A"), tlp="red"))


@pytest.mark.parametrize("config", MODES, ids=["full", "library"])
def test_valid_envelope(config: TaxiiConfig) -> None:
    objs = [good(), good()]
    out = parse_envelope(json.dumps({"objects": objs}).encode(), config)
    assert [o.object_id for o in out] == [o["id"] for o in objs]
    assert out[0].tlp == "red" and out[0].raw_version == objs[0]["modified"]
    assert json.loads(out[0].body) == objs[0]


@pytest.mark.parametrize("config", MODES, ids=["full", "library"])
@pytest.mark.parametrize("mutate", [
    lambda o: {"hello": "world"},
    lambda o: [o],
    lambda o: dict(o, pattern="[ipv4-addr:value = ]"),
    lambda o: dict(o, pattern="[file:hashes.'SHA-256' = 'abc']"),
    lambda o: dict(o, pattern="[ipv4-addr:value = '1.2.3.4'"),
    lambda o: dict(o, id="indicator--not-a-uuid"),
    lambda o: dict(o, created="2026-01-01T00:00:00+09:00"),
    lambda o: dict(o, modified="yesterday"),
    lambda o: dict(o, spec_version="2.0"),
    lambda o: dict(o, valid_until="2000-01-01T00:00:00Z"),
    lambda o: dict(o, created_by_ref="bank a"),
    lambda o: dict(o, type="unicorn", id=f"unicorn--{uuid.uuid4()}"),
    lambda o: {k: v for k, v in o.items() if k != "pattern"},
], ids=["not-stix", "list", "bad-pattern", "bad-hash", "unclosed", "bad-id", "tz-offset", "bad-time", "spec-2.0",
        "expired-before-valid", "bad-ref", "unknown-type", "no-pattern"])
def test_invalid_objects_reject_the_whole_envelope(config: TaxiiConfig, mutate: object) -> None:
    bad = mutate(good())  # type: ignore[operator]
    with pytest.raises(BadRequestError) as info:
        parse_envelope(json.dumps({"objects": [good(), bad]}).encode(), config)
    assert info.value.details["failure_count"] == 1
    assert info.value.details["failures"][0]["index"] == 1
    if isinstance(bad, dict) and bad.get("type") == "indicator" and bad.get("spec_version") == "2.1":
        assert validate_object(bad) != []  # stix2-validator agrees


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"objects": {}}', b'{"objects": []}', b"\xff\xfe"])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_envelope(body, TaxiiConfig())
