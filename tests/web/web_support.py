"""Shared fixtures data for the dashboard tests: a store with members, TAXII objects, results, a report."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi.testclient import TestClient

from mamori.detect import Alert
from mamori.federation import UpdateCheckReport, audit_update_check, check_updates
from mamori.intel import campaign, identity, ip_indicator, serialize, sighting
from mamori.intel.taxii import TaxiiConfig, add_member, create_app, create_collection
from mamori.store import PrivacyLedger, Store, open_store
from mamori.web import DashboardConfig, create_dashboard_app

TAXII = "application/taxii+json;version=2.1"


@dataclass
class Consortium:
    store: Store
    results_dir: Path
    keys: dict[str, str]
    collection: str
    ids: dict[str, str]
    alerts_dir: Path

    def config(self) -> DashboardConfig:
        return DashboardConfig(results_dir=self.results_dir, alerts_dir=self.alerts_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _member_row(bank: str, r: int) -> dict[str, Any]:
    """A member's row of round r as the comparison runner writes it; bank-b's update fails in round 3."""
    failed = bank == "bank-b" and r == 3
    status = "skipped" if r == 0 else "error" if failed else "ok"
    base = 0.05 if bank == "bank-a" else 0.0
    return {"member": bank, "train_status": status, "evaluate_status": "ok",
            "train_examples": 800 if status == "ok" else 0, "evaluate_examples": 200,
            "train_loss": 0.5 / r if status == "ok" else None, "loss": 0.6 / (r + 1) + base,
            "pr_auc": round(0.3 + 0.1 * r + base, 3)}


def _results() -> dict[str, Any]:
    rounds = [{"round": r, "loss": 0.7 / (r + 1), "pr_auc": min(0.95, 0.1 + 0.2 * r), "seconds": 0.5,
               "bytes_down": 1000 * r, "bytes_up": 900 * r, "hash": f"{r:064x}",
               "members": [_member_row(b, r) for b in ("bank-a", "bank-b")]} for r in range(5)]
    banks = {b: {"threshold": 0.1, "overall": {"pr_auc": p, "recall": 0.9, "fpr": 0.001}}
             for b, p in (("bank-a", 0.912), ("bank-b", 0.871))}
    local = {b: {"threshold": 0.2, "overall": {"pr_auc": p, "recall": 0.8, "fpr": 0.002}}
             for b, p in (("bank-a", 0.801), ("bank-b", 0.702))}
    return {"meta": {"title": "test"},
            "data": {"banks": [{"bank": "bank-a", "train_events": 50_000, "test_events": 9_000},
                               {"bank": "bank-b", "train_events": 5_000, "test_events": 1_000}]},
            "regimes": {"federated": {"rounds": rounds, "banks": banks, "strategy": "fedavg",
                                      "final_hash": rounds[-1]["hash"]},
                        "local": {"banks": local}},
            "summary": {}}


def build_consortium(tmp: Path) -> Consortium:
    """Members operator/bank-a/bank-b, one collection, objects at every TLP level, results and a report."""
    store = open_store(f"sqlite:///{tmp / 'web.db'}")
    keys: dict[str, str] = {}
    for name, org, admin in (("operator", "Consortium Ops", True), ("bank-a", "Bank A", False),
                             ("bank-b", "Bank B", False)):
        _, keys[name] = add_member(store, name, org, read=("*",), write=("*",), admin=admin, rate_limit=0)
    coll = create_collection(store, "Consortium feed", alias="feed", description="shared by every member")
    taxii = TestClient(create_app(store, TaxiiConfig(validation="library")))
    a, b = identity("Bank A"), identity("Bank B")
    ind_a = ip_indicator("203.0.113.7", created_by=a, tlp="green", name="Stuffing proxy 203.0.113.7")
    net_a = ip_indicator("198.51.100.0/24", created_by=a, tlp="amber", name="Proxy pool =cmd")
    strict_a = ip_indicator("192.0.2.10", created_by=a, tlp="amber+strict", name="Secret of Bank A")
    camp = campaign("Autumn stuffing wave", created_by=a, tlp="amber", description="one combo list, many banks")
    strict_b = ip_indicator("192.0.2.20", created_by=b, tlp="amber+strict", name="Secret of Bank B")
    seen = sighting(ind_a, observed_by=b, count=3, tlp="green")
    ids = {"ind_a": ind_a.id, "net_a": net_a.id, "strict_a": strict_a.id, "campaign": camp.id,
           "strict_b": strict_b.id, "sighting": seen.id}
    for member, objs in (("bank-a", [a, ind_a, net_a, strict_a, camp]), ("bank-b", [b, strict_b, seen])):
        r = taxii.post(f"/mamori/collections/{coll.id}/objects/", auth=(member, keys[member]),
                       headers={"Accept": TAXII, "Content-Type": TAXII},
                       content=json.dumps({"objects": [serialize(o) for o in objs]}))
        assert r.status_code == 202, r.text
    ledger = PrivacyLedger(store)
    ledger.record("bank-a", 1, 1.5, 1e-5, "dp-sgd/poisson-gaussian/rdp", run_id="run-1")
    ledger.record("bank-b", 1, 2.5, 1e-5, "dp-sgd/poisson-gaussian/rdp", run_id="run-1")
    store.models.register("attack-classifier", 4, b"weights", {"round": 4})
    _audit_flagged_update(store)
    results = tmp / "results"
    results.mkdir()
    (results / "results.json").write_text(json.dumps(_results()))
    (results / "report.html").write_text("<!doctype html><html lang='en'><head><title>Assessment</title></head>"
                                         "<body><h1>Assessment report</h1></body></html>")
    alerts = tmp / "alerts"
    alerts.mkdir()
    model = {"name": "attack-classifier", "version": 4, "sha256": "ab" * 32}
    for member, ip, family, value in (("bank-a", "203.0.113.7", "credential_stuffing", "alice-attacker"),
                                      ("bank-b", "192.0.2.99", "scraping", "bob-scraper")):
        matches = [{"id": ind_a.id, "name": ind_a.name, "pattern": ind_a.pattern, "field": "source.ip"}] \
            if member == "bank-a" else []
        alert = Alert(id=f"alert-{member}-1", timestamp="2026-05-01T10:00:00.000000Z",
                      entity={"kind": "source.ip", "value": ip, "source.ip": ip, "user.name": value}, score=4.2,
                      threshold=0.5, family=family, family_similarity=0.9,
                      top_features=[{"name": "login_failures_5m", "group": "behaviour", "value": 37.0,
                                     "contribution": 2.5}],
                      indicators=matches, request={"method": "POST", "path": "/api/login", "status": 401},
                      model=model, count=2)
        (alerts / f"{member}.jsonl").write_text(alert.to_json() + "\n")
    ids["alert_a"], ids["alert_b"] = "alert-bank-a-1", "alert-bank-b-1"
    return Consortium(store, results, keys, coll.id, ids, alerts)


def _audit_flagged_update(store: Store) -> None:
    """Round 2's update check as the robust strategy runs it: bank-b flips its update's sign and is excluded."""
    rng = np.random.default_rng(7)
    g = rng.normal(size=50)
    honest = rng.normal(size=50)
    names = ["bank-a", "bank-b", "bank-c", "bank-d"]
    weights = [g + honest + rng.normal(scale=0.1, size=50) for _ in names]
    weights[1] = g - 3 * honest
    report = check_updates(2, g, weights, names)
    assert report.flagged == ("bank-b",)
    report = UpdateCheckReport(report.server_round, report.median_norm, report.members, excluded=report.flagged)
    assert audit_update_check(store.audit.append, report) == 1


class DashboardServer:
    """The dashboard (and the TAXII server on another port) served by uvicorn in threads on 127.0.0.1."""

    def __init__(self, consortium: Consortium) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = create_dashboard_app(consortium.store, consortium.config())
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> DashboardServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
