"""Dashboard pages through FastAPI's TestClient: login, operator vs member views, TLP, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from web_support import TAXII, Consortium

from mamori.intel.taxii import TaxiiConfig, create_app
from mamori.web import create_dashboard_app, line_chart


@pytest.fixture
def client(consortium: Consortium) -> TestClient:
    return TestClient(create_dashboard_app(consortium.store, consortium.config()))


def login(client: TestClient, consortium: Consortium, name: str) -> TestClient:
    r = client.post("/login", data={"member": name, "key": consortium.keys[name]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def test_pages_need_login(client: TestClient) -> None:
    for path in ("/", "/rounds", "/intel", "/alerts", "/reports", "/intel/export?format=csv", "/reports/report.html"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path


def test_wrong_key_is_refused(client: TestClient, consortium: Consortium) -> None:
    r = client.post("/login", data={"member": "bank-a", "key": consortium.keys["bank-b"]})
    assert r.status_code == 401
    assert "Unknown member name or API key" in r.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_every_page_renders_for_operator(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    for path in ("/", "/rounds", "/intel", "/alerts", "/reports", "/reports/report.html"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "default-src 'self'" in r.headers["content-security-policy"] or path.startswith("/reports/")
    home = client.get("/").text
    assert "operator view" in home and "bank-b" in home and "Bank B" in home
    assert "10k-100k events" in home and "attack-classifier" in home


def test_rounds_operator_sees_every_bank_member_only_its_own(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    page = client.get("/rounds").text
    assert "0.912" in page and "0.871" in page and "<svg" in page
    assert "Federated PR-AUC per round" in page
    assert "2.500" in page and "1.500" in page  # privacy ledger of both banks
    member = login(TestClient(client.app), consortium, "bank-a")
    page = member.get("/rounds").text
    assert "0.912" in page and "0.871" not in page
    assert "1.500" in page and "2.500" not in page


def test_member_intel_matches_taxii_and_respects_tlp(client: TestClient, consortium: Consortium) -> None:
    taxii = TestClient(create_app(consortium.store, TaxiiConfig(validation="library")))
    for name, own, foreign in (("bank-a", "strict_a", "strict_b"), ("bank-b", "strict_b", "strict_a")):
        c = login(TestClient(client.app), consortium, name)
        page = c.get("/intel").text
        r = taxii.get(f"/mamori/collections/{consortium.collection}/objects/", auth=(name, consortium.keys[name]),
                      headers={"Accept": TAXII})
        api_ids = {o["id"] for o in r.json()["objects"]}
        bundle = c.get("/intel/export?format=stix").json()
        assert {o["id"] for o in bundle["objects"]} == api_ids
        assert consortium.ids[own] in page and consortium.ids[foreign] not in page
        assert consortium.ids[foreign] not in c.get("/intel/export?format=csv").text
        assert "192.0.2.20" not in c.get("/intel/export?format=nginx").text or name == "bank-b"


def test_search_filter_and_sightings(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "bank-b")
    page = client.get("/intel", params={"type": "campaign"}).text
    assert "Autumn stuffing wave" in page and "Stuffing proxy" not in page
    page = client.get("/intel", params={"tlp": "green", "type": "indicator"}).text
    assert "Stuffing proxy 203.0.113.7" in page and "tlp-green" in page
    text = client.get("/intel/export", params={"format": "csv", "q": "203.0.113.7"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in rows if r["type"] == "indicator"] == ["Stuffing proxy 203.0.113.7"]
    assert rows[0]["sightings"] == "3"
    assert client.get("/intel", params={"tlp": "purple"}).status_code == 400
    assert client.get("/intel/export", params={"format": "xml"}).status_code == 400


def test_exports(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    deny = client.get("/intel/export?format=nginx").text.splitlines()
    assert "deny 203.0.113.7/32;" in deny and "deny 198.51.100.0/24;" in deny
    text = client.get("/intel/export?format=csv").text
    assert ",'=cmd" not in text and "'Proxy pool =cmd" not in text  # only leading formula characters are quoted
    bundle = json.loads(client.get("/intel/export?format=stix").text)
    assert bundle["type"] == "bundle" and len(bundle["objects"]) >= 6


def test_logout_needs_csrf_and_ends_session(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "bank-a")
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    page = client.get("/").text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_report_404(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "bank-a")
    assert client.get("/reports/..%2Fresults.json").status_code == 404
    assert client.get("/reports/nope.html").status_code == 404


def test_chart_escapes_and_handles_empty() -> None:
    svg = line_chart([("<b>", [(0, 1.0), (1, float("nan")), (2, 2.0)])], title="t<", x_label="x", y_label="y",
                     chart_id="c")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and svg.count("<circle") == 2
    assert "no data" in line_chart([], title="t", x_label="x", y_label="y", chart_id="e")


def test_alerts_are_each_members_own_and_verdicts_need_csrf(client: TestClient, consortium: Consortium) -> None:
    a = login(TestClient(client.app), consortium, "bank-a")
    page = a.get("/alerts").text
    assert consortium.ids["alert_a"] in page and consortium.ids["alert_b"] not in page
    assert a.get(f"/alerts/{consortium.ids['alert_b']}").status_code == 404
    detail = a.get(f"/alerts/{consortium.ids['alert_a']}").text
    assert "login_failures_5m" in detail and "Stuffing proxy 203.0.113.7" in detail
    url = f"/alerts/{consortium.ids['alert_a']}/verdict"
    assert a.post(url, data={"verdict": "confirmed", "csrf": "forged"}).status_code == 403
    token = detail.split('name="csrf" value="')[1].split('"')[0]
    assert a.post(url, data={"verdict": "maybe", "csrf": token}).status_code == 400
    r = a.post(url, data={"verdict": "false-positive", "csrf": token})
    assert r.status_code == 200 and "false positive" in r.text
    assert "false-positive" in a.get("/alerts").text
    verdicts = (consortium.alerts_dir / "bank-a.verdicts.jsonl").read_text().splitlines()
    assert json.loads(verdicts[-1])["verdict"] == "false-positive"
    op = login(TestClient(client.app), consortium, "operator")
    assert consortium.ids["alert_a"] not in op.get("/alerts").text
