"""Sample canonical events and hypothesis strategies shared by the events tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from hypothesis import strategies as st

from mamori.events import EVENT_SCHEMA, conform

UTC = dt.UTC


def sample_events() -> pl.DataFrame:
    """Four events with the awkward values real logs hold: quotes, backslashes, UTF-8, control characters."""
    return conform(
        pl.DataFrame(
            {
                "@timestamp": [
                    dt.datetime(2026, 5, 1, 0, 0, 0, 123456, tzinfo=UTC),
                    dt.datetime(2026, 5, 1, 1, 2, 3, tzinfo=UTC),
                    dt.datetime(2026, 5, 1, 23, 59, 59, 999999, tzinfo=UTC),
                    dt.datetime(2026, 5, 2, 0, 0, 0, 1000, tzinfo=UTC),
                ],
                "organization.id": ["bank-a", "bank-a", None, "bank-b"],
                "source.ip": ["203.0.113.5", "2001:db8::1", None, "198.51.100.7"],
                "source.port": [51234, 443, None, 1],
                "url.domain": ["api.bank.example", None, "ib.bank.example", "api.bank.example"],
                "url.path": ["/v1/login", '/a"b\\c', "/search/日本語 x", "/v1/transfer"],
                "url.query": [None, "x=1&y=%27", "", "q=\\x41\"'<script>"],
                "http.request.method": ["POST", "GET", "GET", "PUT"],
                "http.version": ["1.1", None, "2", "1.0"],
                "http.request.id": ["req-1", None, "7f3a c9", 'req"4'],
                "http.request.referrer": [None, "https://ib.bank.example/", "-x", "tab\there"],
                "http.request.body.content": ["user=alice", None, None, '{"amount": 10}'],
                "http.request.bytes": [532, None, 0, 10_000_000_000],
                "http.response.status_code": [200, 404, 302, 500],
                "http.response.body.bytes": [512, None, 0, 1],
                "event.duration": [12_345_678, None, 0, 3_000_000_000],
                "user_agent.original": ["Mozilla/5.0 (X11; Linux)", None, 'curl/8 "quoted"', "ua\\with\\backslash"],
                "tls.client.ja3": ["771,4865-4866,0-23,29-23,0", None, None, "abc"],
                "user.name": ["alice", None, None, None],
                "user.id": ["c-001", None, None, "c-002"],
                "session.id": ["s-1", None, None, "s-2"],
                "device.id": ["d-1", None, None, None],
                "event.action": ["login", None, None, "transfer"],
                "event.outcome": ["success", None, "unknown", "failure"],
                "banking.amount": [None, None, None, 125000.5],
                "banking.payee.id": [None, None, None, "p-9"],
                "banking.instrument": [None, None, None, None],
                "labels.is_attack": [False, True, None, True],
                "labels.attack_family": [None, "sqli", None, "ato"],
                "labels.attack_id": [None, "a-1", None, "a-2"],
                "labels.campaign_id": [None, "c-1", None, None],
            }
        )
    )


# ------------------------------------------------------------------------------------------- strategies

_SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=0, max_size=20
).filter(lambda s: s != "-")
_TOKEN = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters='"\\?#/'), min_size=1, max_size=12
)
_HOST = st.from_regex(r"\A[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,8}){0,2}\Z")
_PATH = (
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="?/\n#"),
            min_size=0,
            max_size=8,
        ),
        min_size=1,
        max_size=3,
    )
    .map(lambda parts: "/" + "/".join(parts))
    .filter(lambda p: not p.endswith(" ") and "  " not in p)
)
_QUERY = st.none() | st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=20
)


@st.composite
def event_rows(draw: st.DrawFn) -> dict[str, Any]:
    """One canonical event with values every format can carry (and many it cannot)."""
    ts = draw(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)))
    return {
        "@timestamp": ts.replace(tzinfo=UTC),
        "organization.id": draw(st.none() | _TOKEN),
        "source.ip": draw(st.none() | st.ip_addresses().map(str)),
        "source.port": draw(st.none() | st.integers(0, 65535)),
        "url.domain": draw(st.none() | _HOST),
        "url.path": draw(_PATH),
        "url.query": draw(_QUERY),
        "http.request.method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])),
        "http.version": draw(st.none() | st.sampled_from(["1.0", "1.1", "2"])),
        "http.request.id": draw(st.none() | _SAFE_TEXT),
        "http.request.referrer": draw(st.none() | _SAFE_TEXT),
        "http.request.body.content": draw(st.none() | _SAFE_TEXT),
        "http.request.bytes": draw(st.none() | st.integers(0, 2**40)),
        "http.response.status_code": draw(st.none() | st.integers(100, 599)),
        "http.response.body.bytes": draw(st.none() | st.integers(0, 2**40)),
        "event.duration": draw(st.none() | st.integers(0, 10**12)),
        "user_agent.original": draw(st.none() | _SAFE_TEXT),
        "tls.client.ja3": draw(st.none() | _SAFE_TEXT),
        "user.name": draw(st.none() | _SAFE_TEXT),
        "user.id": draw(st.none() | _TOKEN),
        "event.action": draw(st.none() | st.sampled_from(["login", "transfer"])),
        "banking.amount": draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
        "labels.is_attack": draw(st.none() | st.booleans()),
        "labels.attack_family": draw(st.none() | _TOKEN),
    }


def frame_of(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Canonical frame from row dicts."""
    schema = {k: EVENT_SCHEMA[k] for k in rows[0]} if rows else {}
    return conform(pl.DataFrame(rows, schema=schema))
