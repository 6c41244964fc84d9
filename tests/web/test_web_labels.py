"""Alert verdicts feed the next round's labels: dashboard verdicts -> verdict-labels.csv -> the node's training set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from web_support import Consortium

from mamori.deploy.flowerapp import load_member_matrices
from mamori.detect import Alert
from mamori.events import VERDICT_LABELS_FILE, conform, read_verdict_labels
from mamori.web import create_dashboard_app

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
STUFFER, FALSE_ALARM, OTHER = "203.0.113.50", "198.51.100.9", "192.0.2.77"


def _alert(alert_id: str, ip: str, at: datetime) -> Alert:
    return Alert(id=alert_id, timestamp=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                 entity={"kind": "source.ip", "value": ip, "source.ip": ip}, score=3.0, threshold=0.5,
                 family="credential_stuffing", family_similarity=0.8, top_features=[], indicators=[],
                 request={"method": "POST", "path": "/api/login", "status": 401},
                 model={"name": "attack-classifier", "version": 4, "sha256": "ab" * 32})


def _events() -> pl.DataFrame:
    """Events of bank-a: the stuffer's and the false alarm's events in their alert windows (and one of each
    after the 10-minute window), then benign traffic. Ground truth is deliberately wrong for both entities."""
    rows = []
    for k in range(6):  # within both alerts' windows: [10:00, 10:10) and [10:01, 10:11)
        rows.append((T0 + timedelta(seconds=60 * k + 5), STUFFER, False))
        rows.append((T0 + timedelta(seconds=60 * k + 65), FALSE_ALARM, True))
    rows.append((T0 + timedelta(minutes=30), STUFFER, False))  # outside the window: keeps its label
    rows.append((T0 + timedelta(minutes=31), FALSE_ALARM, True))
    rows += [(T0 + timedelta(minutes=40, seconds=10 * k), OTHER, False) for k in range(20)]
    return conform(pl.DataFrame({
        "@timestamp": [r[0] for r in rows], "source.ip": [r[1] for r in rows],
        "url.path": ["/api/login"] * len(rows), "http.request.method": ["POST"] * len(rows),
        "http.response.status_code": [401] * len(rows), "labels.is_attack": [r[2] for r in rows],
    })).sort("@timestamp")


@pytest.fixture
def member_client(consortium: Consortium, tmp_path: Path) -> TestClient:
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    (alerts / "bank-a.jsonl").write_text(_alert("alert-stuffer", STUFFER, T0).to_json() + "\n"
                                         + _alert("alert-fp", FALSE_ALARM, T0 + timedelta(minutes=1)).to_json() + "\n")
    config = consortium.config().model_copy(update={"alerts_dir": alerts})
    client = TestClient(create_dashboard_app(consortium.store, config))
    r = client.post("/login", data={"member": "bank-a", "key": consortium.keys["bank-a"]})
    assert r.status_code == 200
    return client


def _verdict(client: TestClient, alert_id: str, verdict: str) -> None:
    page = client.get(f"/alerts/{alert_id}").text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    assert client.post(f"/alerts/{alert_id}/verdict", data={"verdict": verdict, "csrf": token}).status_code == 200


def test_confirmed_alert_labels_1_false_positive_0_in_next_training_set(member_client: TestClient,
                                                                        tmp_path: Path) -> None:
    # a false-positive verdict first changed to confirmed: only the latest verdict counts
    _verdict(member_client, "alert-stuffer", "false-positive")
    _verdict(member_client, "alert-stuffer", "confirmed")
    _verdict(member_client, "alert-fp", "false-positive")
    assert 'href="/alerts/labels.csv"' in member_client.get("/alerts").text
    r = member_client.get("/alerts/labels.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert VERDICT_LABELS_FILE in r.headers["content-disposition"]

    data = tmp_path / "node-data"
    data.mkdir()
    events = _events()
    events.write_parquet(data / "events.parquet")
    X_before, y_before, _, _ = load_member_matrices(data, eval_share=0.2)  # noqa: N806
    (data / VERDICT_LABELS_FILE).write_text(r.text)
    labels = read_verdict_labels(data / VERDICT_LABELS_FILE)
    assert [(lab.alert_id, lab.label) for lab in labels] == [("alert-stuffer", 1), ("alert-fp", 0)]
    X_after, y_after, _, y_eval = load_member_matrices(data, eval_share=0.2)  # noqa: N806

    n_train = len(y_after)
    ips = events.get_column("source.ip").to_numpy()[:n_train]
    times = events.get_column("@timestamp").to_list()[:n_train]
    in_window = np.array([t < T0 + timedelta(minutes=11) for t in times])
    assert np.all(y_after[(ips == STUFFER) & in_window] == 1)  # confirmed -> attack
    assert np.all(y_after[(ips == FALSE_ALARM) & in_window] == 0)  # false positive -> benign
    assert ((ips == STUFFER) & in_window).sum() == 6 and ((ips == FALSE_ALARM) & in_window).sum() == 6
    # outside the verdicts' windows and for other entities the labels are unchanged
    untouched = ~in_window | (ips == OTHER)
    assert np.array_equal(y_after[untouched], y_before[untouched])
    # the verdicts changed something: ground truth said the opposite
    assert np.array_equal(y_before[(ips == STUFFER) & in_window], np.zeros(6))
    assert np.array_equal(y_before[(ips == FALSE_ALARM) & in_window], np.ones(6))
    np.testing.assert_array_equal(X_after, X_before)  # labels only; features never see them
    assert len(y_eval) == len(events) - n_train


def test_labels_export_is_each_members_own(member_client: TestClient, consortium: Consortium) -> None:
    _verdict(member_client, "alert-fp", "false-positive")
    assert "alert-fp" in member_client.get("/alerts/labels.csv").text
    other = TestClient(member_client.app)
    other.post("/login", data={"member": "bank-b", "key": consortium.keys["bank-b"]})
    text = other.get("/alerts/labels.csv").text
    assert text.splitlines() == ["entity.kind,entity.value,window.start,window.end,label,family,alert.id,verdict"]
