"""The dashboard in a real browser: Playwright driving Debian's Chromium (package ``chromium``), headless.

Asserts no console errors and that no request leaves the dashboard on 127.0.0.1; saves a screenshot of every
page (to ``$MAMORI_WEB_ARTIFACTS`` when set, else to pytest's temporary folder).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from web_support import TAXII, Consortium, DashboardServer

from mamori.intel.taxii import TaxiiConfig, create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent; install Debian's browser: apt-get install -y chromium")]


@pytest.fixture(scope="module")
def server(consortium: Consortium) -> Iterator[DashboardServer]:
    with DashboardServer(consortium) as s:
        yield s


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("MAMORI_WEB_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Session:
    """One browser context logged in as a member, recording console errors and every request's host."""

    def __init__(self, browser: Any, server: DashboardServer) -> None:
        self.server = server
        self.context = browser.new_context()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme == "data" or (parts.hostname == "127.0.0.1" and parts.port == self.server.port):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def login(self, name: str, key: str) -> None:
        self.page.goto(self.server.base + "/login")
        self.page.get_by_label("Member name").fill(name)
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.server.base + "/")

    def close(self) -> None:
        self.context.close()


CONTRAST_JS = """
els => els.map(e => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => [r, g, b].map(lin).reduce((acc, v, i) => acc + v * [0.2126, 0.7152, 0.0722][i], 0);
  let n = e, bg = null;
  while (n && n.nodeType === 1) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c; break; }
    n = n.parentElement;
  }
  bg = bg || [255, 255, 255];
  const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg);
  return [e.tagName + '.' + e.className + ':' + e.textContent.trim().slice(0, 20),
          (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
})
"""

PAGES = (("/", "Consortium overview"), ("/rounds", "Federated rounds"), ("/intel", "Threat intelligence"),
         ("/alerts", "Alerts"), ("/reports", "Assessment reports"))


@pytest.mark.parametrize("who", ["operator", "bank-a", "bank-b"])
def test_every_page_in_the_browser(who: str, browser: Any, server: DashboardServer, consortium: Consortium,
                                   artefacts: Path) -> None:
    s = Session(browser, server)
    try:
        s.login(who, consortium.keys[who])
        for path, heading in PAGES:
            s.page.goto(server.base + path)
            assert s.page.get_by_role("heading", level=1).inner_text() == heading
            s.page.screenshot(path=str(artefacts / f"{who}{path.replace('/', '_') or '_'}.png"), full_page=True)
        # what the page shows matches the APIs
        s.page.goto(server.base + "/")
        assert s.page.locator("#model-hash").inner_text() == consortium.store.models.list()[-1].sha256
        taxii = TestClient(create_app(consortium.store, TaxiiConfig(validation="library")))
        api = taxii.get(f"/mamori/collections/{consortium.collection}/objects/", auth=(who, consortium.keys[who]),
                        headers={"Accept": TAXII}).json()["objects"]
        s.page.goto(server.base + "/intel")
        shown = set(s.page.locator("#objects tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))
        assert shown == {o["id"] for o in api}
        if who == "bank-a":
            assert consortium.ids["strict_a"] in shown and consortium.ids["strict_b"] not in shown
        if who == "bank-b":
            assert consortium.ids["strict_b"] in shown and consortium.ids["strict_a"] not in shown
        s.page.goto(server.base + "/rounds")
        banks = s.page.locator("#per-bank tbody tr td:first-child").all_inner_texts()
        assert banks == (["bank-a", "bank-b"] if who == "operator" else [who])
        curves = set(s.page.locator("#member-rounds tbody tr td:nth-child(2)").all_inner_texts())
        assert curves == ({"bank-a", "bank-b"} if who == "operator" else {who})
        audited = [e.subject.removeprefix("member:") for e in consortium.store.audit.entries()
                   if e.action == "federation.update_flagged"]
        flagged = s.page.locator("#flagged tbody tr td:nth-child(3)").all_inner_texts()
        assert flagged == [m for m in reversed(audited) if who == "operator" or m == who] and "bank-b" in audited
        s.page.goto(server.base + "/reports")
        s.page.get_by_role("link", name="report.html").click()
        assert s.page.get_by_role("heading", level=1).inner_text() == "Assessment report"
        s.page.screenshot(path=str(artefacts / f"{who}_report.png"))
    finally:
        s.close()
    assert s.errors == [], s.errors
    assert s.outside == [], s.outside


def test_search_filter_and_keyboard(browser: Any, server: DashboardServer, consortium: Consortium,
                                    artefacts: Path) -> None:
    s = Session(browser, server)
    try:
        s.login("bank-b", consortium.keys["bank-b"])
        s.page.goto(server.base + "/intel")
        # keyboard only: Tab reaches the skip link, then the main navigation, then the search form
        focused: list[str] = []
        for _ in range(25):
            s.page.keyboard.press("Tab")
            focused.append(s.page.evaluate(
                "() => { const e = document.activeElement; return (e.closest('nav') ? 'nav:' : '') + "
                "(e.id || e.textContent.trim()) }"))
        assert focused[0] == "Skip to content"
        assert "nav:Overview" in focused and "nav:Threat intelligence" in focused
        assert "q" in focused and "tlp" in focused
        s.page.get_by_label("Text").focus()
        s.page.keyboard.type("203.0.113.7")
        s.page.get_by_label("TLP").select_option("green")
        s.page.keyboard.press("Enter")
        s.page.wait_for_url("**/intel?*")
        names = s.page.locator("#objects tbody tr td:nth-child(4)").all_inner_texts()
        assert "Stuffing proxy 203.0.113.7" in names and "Secret of Bank B" not in names
        row = s.page.locator("tr", has_text="Stuffing proxy 203.0.113.7")
        assert row.locator("td:nth-child(5)").inner_text() == "3"  # bank-b's sighting
        colour = row.locator(".tlp").evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(51, 255, 0)"  # TLP:GREEN
        s.page.screenshot(path=str(artefacts / "bank-b_intel_filtered.png"), full_page=True)
        # WCAG AA: text contrast at least 4.5:1 for the page's kinds of text
        ratios = s.page.locator("h1, h2, p, label, th, td, caption, nav a, .who span, button, .tlp, a").evaluate_all(
            CONTRAST_JS)
        low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
        assert ratios and low == [], low
        with s.page.expect_download() as dl:
            s.page.get_by_role("link", name="nginx deny list").click()
        text = Path(dl.value.path()).read_text()
        assert "deny 203.0.113.7/32;" in text and "192.0.2" not in text  # filtered to the search
        # a wrong key shows an accessible error
        s.page.get_by_role("button", name="Log out").click()
        s.page.get_by_label("Member name").fill("bank-a")
        s.page.get_by_label("API key").fill("mamori_wrong")
        s.page.get_by_role("button", name="Log in").click()
        assert "Unknown member name" in s.page.get_by_role("alert").inner_text()
    finally:
        s.close()
    assert s.errors == [] or all("401" in e for e in s.errors), s.errors
    assert s.outside == [], s.outside


def test_confirm_alert_publishes_sighting_to_taxii(browser: Any, server: DashboardServer, consortium: Consortium,
                                                   artefacts: Path) -> None:
    taxii = TestClient(create_app(consortium.store, TaxiiConfig(validation="library")))

    def sightings_of_ind_a() -> list[dict[str, Any]]:
        objs = taxii.get(f"/mamori/collections/{consortium.collection}/objects/", params={"match[type]": "sighting"},
                         auth=("bank-b", consortium.keys["bank-b"]), headers={"Accept": TAXII}).json()
        return [o for o in objs.get("objects", []) if o["sighting_of_ref"] == consortium.ids["ind_a"]]

    before = sightings_of_ind_a()
    s = Session(browser, server)
    try:
        s.login("bank-a", consortium.keys["bank-a"])
        s.page.get_by_role("link", name="Alerts").click()
        rows = s.page.locator("#alerts tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert rows == [consortium.ids["alert_a"]]  # never bank-b's alert
        s.page.locator(f'tr[data-id="{consortium.ids["alert_a"]}"] a').click()
        assert "login_failures_5m" in s.page.locator("#features").inner_text()
        assert "Stuffing proxy 203.0.113.7" in s.page.locator("#indicators").inner_text()
        s.page.get_by_role("button", name="Confirm (share as sighting)").click()
        assert "Confirmed; shared with the consortium" in s.page.get_by_role("status").inner_text()
        assert s.page.locator("#verdict").inner_text() == "confirmed"
        s.page.screenshot(path=str(artefacts / "bank-a_alert_confirmed.png"), full_page=True)
        # the verdict is the next round's label: the alerts page exports it for the member's node
        s.page.get_by_role("link", name="All alerts").click()
        with s.page.expect_download() as dl:
            s.page.get_by_role("link", name="download the verdict labels").click()
        assert dl.value.suggested_filename == "verdict-labels.csv"
        rows = Path(dl.value.path()).read_text().splitlines()
        assert rows[1].startswith("source.ip,203.0.113.7,2026-05-01T10:00:00+00:00,2026-05-01T10:10:00+00:00,1,")
    finally:
        s.close()
    assert s.errors == [], s.errors
    assert s.outside == [], s.outside
    after = sightings_of_ind_a()
    new = [o for o in after if o["id"] not in {b["id"] for b in before}]
    assert len(new) == 1 and new[0]["count"] == 2
    assert "user.name" not in str(new[0]) and "alice-attacker" not in str(new[0])  # no customer identifier


A11Y_JS = """
() => {
  const problems = [];
  const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const named = e => {
    if (e.getAttribute('aria-label')) return true;
    const by = e.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).every(id => (document.getElementById(id) || {}).textContent)) return true;
    return Array.from(e.labels || []).some(l => l.textContent.trim());
  };
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
    if (!named(e)) problems.push('unlabelled field ' + (e.id || e.name));
  for (const e of document.querySelectorAll('button, a[href]'))
    if (visible(e) && !(e.textContent.trim() || e.getAttribute('aria-label'))) problems.push('nameless ' + e.outerHTML);
  for (const e of document.querySelectorAll('svg'))
    if (e.getAttribute('role') !== 'img' || !named(e)) problems.push('svg without role=img and a name');
  for (const e of document.querySelectorAll('table'))
    if (!e.querySelector('th')) problems.push('table without header cells ' + e.id);
  for (const e of document.querySelectorAll('[tabindex]'))
    if (Number(e.getAttribute('tabindex')) > 0) problems.push('positive tabindex ' + e.id);
  if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
  if (!document.documentElement.lang) problems.push('no lang');
  if (!document.title.trim()) problems.push('no title');
  return problems;
}
"""


@pytest.mark.parametrize("who", ["operator", "bank-a"])
def test_accessibility_labels_contrast_keyboard_on_every_page(who: str, browser: Any, server: DashboardServer,
                                                              consortium: Consortium) -> None:
    s = Session(browser, server)
    try:
        s.page.goto(server.base + "/login")
        assert s.page.evaluate(A11Y_JS) == []
        s.login(who, consortium.keys[who])
        for path, heading in PAGES:
            # keyboard only: from the top of the overview, Tab to the page's link in the main navigation, Enter
            s.page.goto(server.base + "/")
            for _ in range(15):
                s.page.keyboard.press("Tab")
                if s.page.evaluate("() => !!document.activeElement.closest('nav') && "
                                   "document.activeElement.getAttribute('href')") == path:
                    break
            else:
                pytest.fail(f"{path}: its navigation link is not reachable with Tab")
            s.page.keyboard.press("Enter")
            s.page.wait_for_url(server.base + path)
            assert s.page.get_by_role("heading", level=1).inner_text() == heading
            # labels, names, structure
            assert s.page.evaluate(A11Y_JS) == [], path
            # every interactive element can take keyboard focus and shows a visible outline when it does
            interactive = s.page.locator("main a[href], main button, main input:not([type=hidden]), main select")
            for i in range(min(interactive.count(), 12)):
                el = interactive.nth(i)
                el.focus()
                assert el.evaluate("e => e === document.activeElement"), path
                assert el.evaluate("e => getComputedStyle(e).outlineStyle") != "none", path
            # WCAG AA: text contrast at least 4.5:1
            ratios = s.page.locator("h1, h2, h3, p, label, th, td, caption, dt, dd, nav a, .who span, button, .tlp, "
                                    "a, li, strong").evaluate_all(CONTRAST_JS)
            low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
            assert ratios and low == [], (path, low)
    finally:
        s.close()
    assert s.errors == [], s.errors
    assert s.outside == [], s.outside
