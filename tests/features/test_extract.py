from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from toy_events import START, benign

from mamori.errors import SchemaError
from mamori.events import LABEL_COLUMNS, conform
from mamori.features import FeatureConfig, extract_features, labels_from_events


def test_matrix_is_float32_aligned_and_named(bank_events: pl.DataFrame) -> None:
    # Execute
    fm = extract_features(bank_events)
    # Assert
    assert fm.X.dtype == np.float32
    assert fm.X.shape == (bank_events.height, fm.spec.n_features)
    assert np.isfinite(fm.X).all()
    assert len(set(fm.spec.names)) == fm.spec.n_features
    assert {"request", "lexical", "ngram_path", "ngram_payload", "ip", "user", "session"} <= set(fm.spec.groups)


def test_features_never_depend_on_labels(bank_events: pl.DataFrame) -> None:
    # Prepare: the same events with labels shuffled, and with labels removed
    rng = np.random.default_rng(0)
    shuffled = bank_events.with_columns(
        pl.Series("labels.is_attack", rng.permutation(bank_events["labels.is_attack"].to_numpy())),
        pl.lit("made_up").alias("labels.attack_family"),
        pl.lit("x").alias("labels.campaign_id"),
    )
    removed = bank_events.drop(list(LABEL_COLUMNS))
    # Execute
    base = extract_features(bank_events).X
    # Assert
    np.testing.assert_array_equal(base, extract_features(shuffled).X)
    np.testing.assert_array_equal(base, extract_features(removed).X)


def test_appending_future_events_leaves_earlier_rows_unchanged(bank_events: pl.DataFrame) -> None:
    # Prepare: cut the day in two
    events = bank_events.sort("@timestamp")
    cutoff = START + dt.timedelta(hours=12)
    past = events.filter(pl.col("@timestamp") < cutoff)
    assert 0 < past.height < events.height
    # Execute
    X_past = extract_features(past).X
    X_all = extract_features(events).X
    # Assert
    np.testing.assert_array_equal(X_past, X_all[: past.height])


def test_rows_stay_aligned_with_input_order(bank_events: pl.DataFrame) -> None:
    # Prepare: the same events in a random order (no two share a timestamp)
    perm = np.random.default_rng(1).permutation(bank_events.height)
    shuffled = bank_events[perm]
    # Execute
    X = extract_features(bank_events).X
    X_shuffled = extract_features(shuffled).X
    # Assert
    np.testing.assert_array_equal(X[perm], X_shuffled)


def _brute_force_windows(events: pl.DataFrame, window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Requests and distinct usernames per source IP in (t - w, t], by definition."""
    t = events["@timestamp"].dt.epoch("us").to_numpy() / 1e6
    ip = events["source.ip"].to_list()
    user = events["user.name"].to_list()
    n = len(ip)
    req = np.zeros(n)
    distinct = np.zeros(n)
    for i in range(n):
        members = [j for j in range(n) if ip[j] == ip[i] and t[i] - window_s < t[j] <= t[i]]
        req[i] = len(members)
        distinct[i] = len({user[j] for j in members if user[j] is not None})
    return req, distinct


def test_windowed_counts_match_their_definition() -> None:
    # Prepare: a few IPs and usernames, random times within two hours
    rng = np.random.default_rng(3)
    n = 300
    seconds = np.sort(rng.uniform(0, 7200, n))
    users = rng.integers(0, 12, n)
    events = conform(
        pl.DataFrame(
            {
                "@timestamp": [START + dt.timedelta(seconds=float(s)) for s in seconds],
                "source.ip": [f"10.0.0.{i}" for i in rng.integers(0, 4, n)],
                "user.name": [None if u == 0 else f"user{u}" for u in users],
                "event.action": "login",
            }
        )
    )
    config = FeatureConfig(short_window="5m", long_window="1h")
    # Execute
    fm = extract_features(events, config)
    # Assert
    req5, _ = _brute_force_windows(events, 300)
    _, users1h = _brute_force_windows(events, 3600)
    np.testing.assert_allclose(np.expm1(fm.column("ip_requests_short")), req5, rtol=1e-5)
    np.testing.assert_allclose(np.expm1(fm.column("ip_distinct_usernames_long")), users1h, rtol=1e-5)


def test_account_ids_do_not_become_features() -> None:
    # Prepare: two customers' identical calls that differ only in their account number and a UUID
    frame = conform(
        pl.DataFrame(
            {
                "@timestamp": [START, START + dt.timedelta(seconds=1)],
                "url.path": ["/api/v1/accounts/12345678/history", "/api/v1/accounts/99887766/history"],
                "url.query": [
                    "ref=3f2a9c1e-1234-4abc-9def-0123456789ab&page=2",
                    "ref=0b1c2d3e-5678-4abc-8def-abcdefabcdef&page=3",
                ],
            }
        )
    )
    # Execute
    fm = extract_features(frame, FeatureConfig(include_behaviour=False))
    # Assert: every lexical and n-gram column is equal
    cols = [i for i, g in enumerate(fm.spec.groups) if g in ("lexical", "ngram_path", "ngram_payload")]
    np.testing.assert_array_equal(fm.X[0, cols], fm.X[1, cols])


def test_injection_keywords_are_counted(bank_events: pl.DataFrame) -> None:
    # Execute
    fm = extract_features(bank_events)
    y, families = labels_from_events(bank_events)
    # Assert
    injection = families == "injection"
    keywords = fm.column("kw_sqli_strong") + fm.column("kw_xss") + fm.column("kw_traversal") + fm.column("kw_cmd")
    assert (keywords[injection] > 0).all()
    assert (keywords[y == 0] == 0).all()


def test_stuffing_ip_stands_out(bank_events: pl.DataFrame) -> None:
    # Execute
    fm = extract_features(bank_events)
    _, families = labels_from_events(bank_events)
    stuffing = families == "credential_stuffing"
    benign_rows = families == "benign"
    # Assert: the last try of the burst has seen ~50 usernames from its IP, and very regular timing
    assert np.expm1(fm.column("ip_distinct_usernames_long")[stuffing]).max() == pytest.approx(50, abs=0.01)
    assert np.expm1(fm.column("ip_distinct_usernames_long")[benign_rows]).max() < 5
    assert np.median(fm.column("ip_gap_cv")[stuffing]) < 0.2


def test_user_history_features() -> None:
    # Prepare: one customer's usual small transfers, then a new device, a contact change and a big transfer
    base = benign(n_sessions=40, n_users=1, seed=5).sort("@timestamp")
    last = base["@timestamp"].max()
    takeover = conform(
        pl.DataFrame(
            {
                "@timestamp": [last + dt.timedelta(minutes=m) for m in (10, 11, 12)],
                "user.id": "u0",
                "device.id": "attacker-phone",
                "source.ip": "203.0.113.9",
                "event.action": ["contact_change", "payee_add", "transfer"],
                "banking.amount": [None, None, 5_000_000.0],
                "banking.payee.id": [None, "mule-1", "mule-1"],
            }
        )
    )
    events = pl.concat([base, takeover])
    # Execute
    fm = extract_features(events)
    # Assert
    last_row = events.height - 1
    assert fm.column("user_new_device")[events.height - 3] == 1
    assert fm.column("user_amount_z")[last_row] > 3
    assert fm.column("user_first_time_payee")[events.height - 2] == 1
    assert np.expm1(fm.column("user_seconds_since_contact_change")[last_row]) == pytest.approx(120, abs=1)


def test_empty_frame_gives_same_columns(bank_events: pl.DataFrame) -> None:
    # Execute
    empty = extract_features(bank_events.head(0))
    full = extract_features(bank_events)
    # Assert
    assert empty.X.shape == (0, full.spec.n_features)
    assert empty.spec.names == full.spec.names


def test_spec_does_not_depend_on_the_data(bank_events: pl.DataFrame) -> None:
    # Prepare
    other = benign(n_sessions=5, n_users=2, seed=9)
    # Execute / Assert
    assert extract_features(bank_events).spec == extract_features(other).spec
    assert extract_features(bank_events).spec.fingerprint() == extract_features(other).spec.fingerprint()


def test_minimal_frame_and_null_timestamp_error() -> None:
    # Prepare
    minimal = pl.DataFrame({"@timestamp": [START], "url.path": ["/"]})
    broken = pl.DataFrame({"@timestamp": [START, None], "url.path": ["/", "/x"]})
    # Execute / Assert
    assert extract_features(minimal).X.shape[0] == 1
    with pytest.raises(SchemaError, match="row 1"):
        extract_features(broken)
    with pytest.raises(SchemaError, match="@timestamp"):
        extract_features(pl.DataFrame({"url.path": ["/"]}))


def test_labels_from_events(bank_events: pl.DataFrame) -> None:
    # Execute
    y, families = labels_from_events(bank_events)
    # Assert
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert set(families[y == 0]) == {"benign"}
    assert set(families[y == 1]) == {"credential_stuffing", "injection"}
    with pytest.raises(SchemaError):
        labels_from_events(bank_events.drop("labels.is_attack"))


def test_first_row_keeps_history_out_of_the_output(bank_events: pl.DataFrame) -> None:
    # Prepare
    whole = extract_features(bank_events)
    # Execute: the first 300 events are history only
    tail = extract_features(bank_events, first_row=300)
    # Assert: the remaining rows, bit for bit, and nothing for the history
    np.testing.assert_array_equal(tail.X, whole.X[300:])
    assert tail.spec == whole.spec
    with pytest.raises(SchemaError, match="first_row"):
        extract_features(bank_events, first_row=bank_events.height + 1)
