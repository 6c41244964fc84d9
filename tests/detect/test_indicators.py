"""Matching events against shared STIX indicators."""

from __future__ import annotations

import json

from mamori.detect import IndicatorIndex
from mamori.intel import asn_indicator, ip_indicator, serialize, tls_fingerprint_indicator, user_agent_indicator


def test_matches_ips_networks_asns_user_agents_and_ja3(tmp_path) -> None:
    # Prepare
    objects = [serialize(o) for o in (
        ip_indicator("203.0.113.7"),
        ip_indicator("198.51.100.0/24"),
        asn_indicator(64500),
        user_agent_indicator("python-requests/2.31"),
        tls_fingerprint_indicator("e7d705a3286e19ea42f587b344ee6865"),
    )]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--x", "objects": objects}))

    # Execute
    index = IndicatorIndex.from_file(path)

    # Assert
    assert index.size == 5 and index.skipped == 0
    assert [m["field"] for m in index.match({"source.ip": "203.0.113.7"})] == ["source.ip"]
    assert len(index.match({"source.ip": "198.51.100.77"})) == 1
    assert len(index.match({"source.as.number": 64500})) == 1
    assert len(index.match({"user_agent.original": "python-requests/2.31"})) == 1
    assert len(index.match({"tls.client.ja3": "e7d705a3286e19ea42f587b344ee6865"})) == 1
    assert index.match({"source.ip": "192.0.2.1", "source.as.number": 1}) == []
    assert index.match({"source.ip": "not an ip"}) == []
    both = index.match({"source.ip": "203.0.113.7", "source.as.number": 64500})
    assert len(both) == 2


def test_unknown_patterns_are_skipped() -> None:
    index = IndicatorIndex.from_objects([
        {"type": "indicator", "id": "indicator--1", "pattern": "[file:hashes.MD5 = 'abc']", "pattern_type": "stix"},
        {"type": "indicator", "id": "indicator--2", "pattern": "alert tcp any", "pattern_type": "snort"},
        {"type": "malware", "id": "malware--1"},
    ])
    assert index.size == 0 and index.skipped == 2
