"""Dashboard pages through FastAPI's TestClient: login, operator vs member views, TLP, exports."""

from __future__ import annotations

import csv
import html
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


def _rows(page: str, table_id: str) -> list[list[str]]:
    """Cell texts of a table's body rows (the pages are simple, regular HTML)."""
    import re

    body = page.split(f'id="{table_id}"')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_members_show_last_seen_volume_and_rounds_joined(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    rows = {r[0]: r for r in _rows(client.get("/").text, "members")}
    # bank-b's update failed in round 3: it joined 3 of the 4 training rounds
    assert rows["bank-a"][4:] == [rows["bank-a"][4], "10k-100k events", "4"] and rows["bank-a"][4] != "never"
    assert rows["bank-b"][5:] == ["< 10k events", "3"]
    assert rows["operator"][5:] == ["–", "–"]  # trains no model


def test_per_member_curves_per_round_operator_all_member_own(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    page = client.get("/rounds").text
    assert "PR-AUC per round on each member's evaluation split" in html.unescape(page)  # per-member chart
    rows = _rows(page, "member-rounds")
    assert len(rows) == 10 and {r[1] for r in rows} == {"bank-a", "bank-b"}
    assert ["3", "bank-b", "error"] == rows[7][:3]
    assert rows[9] == ["4", "bank-b", "ok", "800", "0.1250", "0.1200", "0.7000"]
    assert page.count('<polyline') >= 2 + 4  # consortium loss + PR-AUC, and two members on two charts
    member = login(TestClient(client.app), consortium, "bank-a")
    rows = _rows(member.get("/rounds").text, "member-rounds")
    assert len(rows) == 5 and {r[1] for r in rows} == {"bank-a"}


def test_flagged_updates_from_the_update_check_audit(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    rows = _rows(client.get("/rounds").text, "flagged")
    assert len(rows) == 1
    at, rnd, who, why, ratio, cosine, action = rows[0]
    assert (rnd, who, action) == ("2", "bank-b", "excluded from the round")
    assert "cosine" in why and float(cosine) < 0
    b = login(TestClient(client.app), consortium, "bank-b")
    assert _rows(b.get("/rounds").text, "flagged")[0][2] == "bank-b"  # its own flag
    a = login(TestClient(client.app), consortium, "bank-a")
    page = a.get("/rounds").text
    assert 'id="flagged"' not in page and "no update flagged" in page  # not another member's


def test_privacy_ledger_against_budget(client: TestClient, consortium: Consortium) -> None:
    login(client, consortium, "operator")
    rows = {r[0]: r for r in _rows(client.get("/rounds").text, "ledger")}
    assert rows["bank-b"][2] == "2.500" and rows["bank-b"][6].endswith("31 %") and rows["bank-b"][7] == "within budget"
    app = create_dashboard_app(consortium.store, consortium.config().model_copy(update={"privacy_budget": 2.0}))
    over = login(TestClient(app), consortium, "operator")
    rows = {r[0]: r for r in _rows(over.get("/rounds").text, "ledger")}
    assert rows["bank-b"][7] == "over budget" and rows["bank-a"][7] == "within budget"


def test_chart_legend_wraps_inside_the_chart() -> None:
    import re

    names = [f"bank-{i:02d}-with-a-long-name" for i in range(7)]
    svg = line_chart([(n, [(0, i), (1, i + 1.0)]) for i, n in enumerate(names)], title="t", x_label="x",
                     y_label="y", chart_id="w")
    swatches = [(float(x), float(y)) for x, y in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="10"', svg)]
    assert len(swatches) == 7 and all(x + 14 + 6.5 * len(names[0]) <= 560 for x, _ in swatches)
    assert len({y for _, y in swatches}) >= 2  # wrapped onto a second row
    height = float(re.search(r'viewBox="0 0 560 ([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert height > 260  # grown to make room for the legend rows instead of drawing over the lines


def test_chart_colours_have_3_to_1_contrast_on_white() -> None:
    from mamori.web.charts import PALETTE

    def luminance(hex_colour: str) -> float:
        def lin(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)

    ratios = {c: 1.05 / (luminance(c) + 0.05) for c in PALETTE}
    assert len(set(PALETTE)) == len(PALETTE) and all(r >= 3.0 for r in ratios.values()), ratios
