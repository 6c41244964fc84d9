"""The privacy ledger: rows per member and round, totals over runs, in SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from mamori.errors import StoreError
from mamori.store import PrivacyLedger, Store

DPSGD = "dp-sgd/poisson-gaussian/rdp"


def test_rounds_are_recorded_and_read_back_in_order(store: Store) -> None:
    # Prepare
    ledger = PrivacyLedger(store)
    # Execute
    for rnd, eps in ((1, 2.0), (2, 3.1), (3, 4.0)):
        ledger.record("bank-a", rnd, eps, 1e-5, DPSGD, run_id="run-1", noise_multiplier=0.9, steps=10 * rnd)
    ledger.record("bank-b", 1, 1.5, 1e-5, DPSGD, run_id="run-1")
    # Assert
    rows = ledger.entries("bank-a")
    assert [(r.server_round, r.epsilon, r.steps) for r in rows] == [(1, 2.0, 10), (2, 3.1, 20), (3, 4.0, 30)]
    assert rows[0].mechanism == DPSGD and rows[0].unit == "customer" and rows[0].noise_multiplier == 0.9
    assert len(ledger.entries(run_id="run-1")) == 4


def test_totals_take_each_runs_last_round_and_add_runs_up(store: Store) -> None:
    # Prepare: two runs for bank-a (cumulative epsilons within each run), one member-level row
    ledger = PrivacyLedger(store)
    ledger.record("bank-a", 1, 2.0, 1e-5, DPSGD, run_id="r1")
    ledger.record("bank-a", 2, 4.0, 1e-5, DPSGD, run_id="r1")
    ledger.record("bank-a", 1, 1.0, 2e-5, DPSGD, run_id="r2")
    ledger.record("bank-a", 1, 0.5, 1e-6, "central-gaussian/fixed-clipping/rdp", run_id="r1", unit="member")
    # Execute
    total = ledger.total("bank-a")
    member_level = ledger.total("bank-a", unit="member")
    # Assert: 4.0 (r1's last round) + 1.0 (r2); deltas add; units apart
    assert total.epsilon == pytest.approx(5.0)
    assert total.delta == pytest.approx(3e-5)
    assert (total.runs, total.rounds) == (2, 3)
    assert member_level.epsilon == pytest.approx(0.5)
    assert ledger.remaining("bank-a", 8.0) == pytest.approx(3.0)
    assert ledger.remaining("bank-z", 8.0) == 8.0
    assert [(t.member, t.unit) for t in ledger.totals()] == [("bank-a", "customer"), ("bank-a", "member")]


def test_a_round_cannot_be_recorded_twice_or_with_nonsense(store: Store) -> None:
    ledger = PrivacyLedger(store)
    ledger.record("bank-a", 1, 2.0, 1e-5, DPSGD, run_id="r1")
    with pytest.raises(StoreError, match="already in the ledger"):
        ledger.record("bank-a", 1, 2.5, 1e-5, DPSGD, run_id="r1")
    with pytest.raises(StoreError, match="epsilon"):
        ledger.record("bank-a", 2, float("nan"), 1e-5, DPSGD, run_id="r1")
    with pytest.raises(StoreError, match="unit"):
        ledger.record("bank-a", 2, 1.0, 1e-5, DPSGD, run_id="r1", unit="bank")
    assert len(ledger.entries()) == 1
