"""The dashboard app factory: login with a TAXII member's API key, server-rendered pages, exports."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from mamori.errors import IntelError
from mamori.events import VERDICT_LABELS_FILE, verdict_labels_csv
from mamori.intel.taxii.members import Member, authenticate, get_member
from mamori.intel.taxii.repository import list_collections
from mamori.store import Store
from mamori.web.alerts import VERDICTS, load_alerts, publish_sightings, record_verdict, verdict_labels
from mamori.web.charts import line_chart
from mamori.web.config import DashboardConfig
from mamori.web.data import (
    csv_export,
    finite,
    flagged_updates,
    intel_objects,
    last_seen,
    ledger_view,
    load_results,
    member_rounds,
    members_view,
    nginx_deny_list,
    rounds_joined,
    stix_bundle,
    volume_bucket,
)

__all__ = ["create_dashboard_app", "serve_dashboard"]

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
COOKIE = "mamori_session"
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@dataclass
class _Session:
    member: str
    csrf: str
    expires: float


class _LoginRequired(Exception):
    pass


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _config(request: Request) -> DashboardConfig:
    return request.app.state.config  # type: ignore[no-any-return]


def _session(request: Request) -> _Session | None:
    token = request.cookies.get(COOKIE, "")
    sessions: dict[str, _Session] = request.app.state.sessions
    s = sessions.get(token)
    if s is None:
        return None
    if s.expires < time.time():
        sessions.pop(token, None)
        return None
    return s


def current_member(request: Request) -> Member:
    """The logged-in, non-revoked member (else redirect to the login page)."""
    s = _session(request)
    if s is None:
        raise _LoginRequired
    try:
        member = get_member(_store(request), s.member)
    except IntelError as exc:
        raise _LoginRequired from exc
    if member.revoked:
        raise _LoginRequired
    request.state.csrf = s.csrf
    return member


Viewer = Annotated[Member, Depends(current_member)]


def _render(request: Request, name: str, member: Member | None, status_code: int = 200, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    ctx = {"member": member, "config": _config(request), "csrf": getattr(request.state, "csrf", ""),
           "path": request.url.path, **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def _filters(request: Request) -> dict[str, str]:
    p = request.query_params
    out = {k: p.get(k, "").strip()[:200] for k in ("q", "type", "tlp", "collection")}
    if out["tlp"] not in ("", *TLP_LEVELS):
        raise HTTPException(400, f"tlp must be one of {', '.join(TLP_LEVELS)}, got {out['tlp']!r}")
    return out


def _objects(request: Request, member: Member, f: dict[str, str]) -> list[Any]:
    cfg = _config(request)
    return intel_objects(_store(request), member, api_root=cfg.api_root, limit=cfg.max_objects, query=f["q"],
                         types=(f["type"],) if f["type"] else (), tlp=f["tlp"], collection=f["collection"])


def _own_bank(member: Member, bank: str) -> bool:
    return member.admin or bank in (member.name, member.organization)


def create_dashboard_app(store: Store, config: DashboardConfig | None = None) -> FastAPI:
    """Build the consortium dashboard over an open store.

    Members log in with their TAXII member name and API key (checked by
    :func:`mamori.intel.taxii.authenticate`); members with ``admin`` rights get the operator view.

    Parameters
    ----------
    store : Store
        The open store (members, TAXII collections, model registry, privacy ledger).
    config : DashboardConfig or None, default=None
        Settings; defaults when None.

    Returns
    -------
    fastapi.FastAPI
        Serve it with uvicorn (see :func:`mamori.web.serve_dashboard`).
    """
    config = config or DashboardConfig()
    app = FastAPI(title=config.title, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.config = config
    app.state.sessions = {}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE / "templates")), autoescape=True)
    app.state.templates = Jinja2Templates(env=env)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(_LoginRequired)
    async def _login_required(request: Request, exc: _LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return _render(request, "error.html", None, status_code=exc.status_code, message=str(exc.detail))

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        return _render(request, "login.html", None, error="")

    @app.post("/login")
    def login(request: Request, member: Annotated[str, Form()] = "", key: Annotated[str, Form()] = "") -> Response:
        found = authenticate(store, key, member) if member and key else None
        if found is None:
            logger.info("dashboard: failed login for %r", member[:100])
            return _render(request, "login.html", None, status_code=401,
                           error="Unknown member name or API key (or the key was revoked).")
        token = secrets.token_urlsafe(32)
        app.state.sessions[token] = _Session(found.name, secrets.token_urlsafe(16),
                                             time.time() + 60 * config.session_minutes)
        store.audit.append(f"member:{found.name}", "dashboard.login", f"member:{found.name}", {})
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=config.secure_cookies,
                            max_age=60 * config.session_minutes, path="/")
        return response

    @app.post("/logout")
    def logout(request: Request, member: Viewer, csrf: Annotated[str, Form()] = "") -> Response:
        if not secrets.compare_digest(csrf, request.state.csrf):
            raise HTTPException(403, "the logout form is stale; reload the page and try again")
        app.state.sessions.pop(request.cookies.get(COOKIE, ""), None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, member: Viewer) -> Response:
        results = load_results(config.results_dir)
        seen = last_seen(store)
        banks = {b["bank"]: b for b in (results or {}).get("data", {}).get("banks", [])}
        rounds = (results or {}).get("regimes", {}).get("federated", {}).get("rounds", [])
        joined = rounds_joined(results)
        volumes = [{"bank": b, "bucket": volume_bucket(int(d.get("train_events", 0)) + int(d.get("test_events", 0))),
                    "rounds": joined.get(b)} for b, d in banks.items()]
        by_bank = {v["bank"]: v for v in volumes}
        members = [{"m": m, "last_seen": seen.get(m.name, "never"),
                    "bank": by_bank.get(m.name) or by_bank.get(m.organization)} for m in members_view(store, member)]
        records = store.models.list()
        model = records[-1] if records else None
        quality = finite(rounds[-1].get("pr_auc")) if rounds else None
        objs = intel_objects(store, member, api_root=config.api_root, limit=config.max_objects)
        per_day: dict[str, dict[str, int]] = {}
        for o in objs:
            day = per_day.setdefault(o.date_added[:10], {"indicator": 0, "campaign": 0, "sighting": 0})
            if o.type in day:
                day[o.type] += 1
        days = sorted(per_day)
        chart = line_chart([(t + "s", [(i, per_day[d][t]) for i, d in enumerate(days)])
                            for t in ("indicator", "campaign", "sighting")],
                           title="Shared intelligence per day (day index)", x_label="day", y_label="objects",
                           chart_id="intel-per-day") if days else ""
        return _render(request, "overview.html", member, members=members, volumes=volumes, model=model,
                       quality=quality, results=results, chart=chart, days=days, per_day=per_day,
                       counts={t: sum(1 for o in objs if o.type == t) for t in ("indicator", "campaign", "sighting")})

    @app.get("/rounds", response_class=HTMLResponse)
    def rounds_page(request: Request, member: Viewer) -> Response:
        results = load_results(config.results_dir)
        fed = (results or {}).get("regimes", {}).get("federated", {})
        rounds = [{k: r.get(k) for k in ("round", "loss", "pr_auc", "seconds", "bytes_down", "bytes_up", "hash")}
                  for r in fed.get("rounds", [])]
        loss = line_chart([("loss", [(r["round"], finite(r["loss"]) or float("nan")) for r in rounds])],
                          title="Federated evaluation loss per round", x_label="round", y_label="loss",
                          chart_id="loss") if rounds else ""
        prauc = line_chart([("PR-AUC", [(r["round"], finite(r["pr_auc"]) or float("nan")) for r in rounds])],
                           title="Federated PR-AUC per round", x_label="round", y_label="PR-AUC",
                           chart_id="prauc") if rounds else ""
        per_bank = []
        for bank, d in sorted(fed.get("banks", {}).items()):
            if not _own_bank(member, bank):
                continue
            local = (results or {}).get("regimes", {}).get("local", {}).get("banks", {}).get(bank, {})
            per_bank.append({"bank": bank, "threshold": finite(d.get("threshold")),
                             **{k: finite(d.get("overall", {}).get(k)) for k in ("pr_auc", "recall", "fpr")},
                             "local_pr_auc": finite(local.get("overall", {}).get("pr_auc"))})
        curves = member_rounds(results, member)
        member_charts = [line_chart([(name, [(r["round"], r[key] if r[key] is not None else float("nan"))
                                             for r in rows]) for name, rows in curves.items()],
                                    title=title, x_label="round", y_label=label, chart_id=cid)
                         for key, title, label, cid in (
                             ("pr_auc", "PR-AUC per round on each member's evaluation split", "PR-AUC", "member-prauc"),
                             ("loss", "Evaluation loss per round on each member's split", "loss", "member-loss"))
                         ] if curves else []
        member_table = sorted(({"member": name, **r} for name, rows in curves.items() for r in rows),
                              key=lambda r: (r["round"] if isinstance(r["round"], int) else -1, r["member"]))
        ledger = ledger_view(store, member)
        return _render(request, "rounds.html", member, results=results, rounds=rounds, loss=loss, prauc=prauc,
                       per_bank=per_bank, flagged=flagged_updates(store, member), ledger=ledger,
                       budget=config.privacy_budget, member_charts=member_charts, member_table=member_table,
                       strategy=fed.get("strategy"), final_hash=fed.get("final_hash"),
                       models=store.models.list())

    @app.get("/intel", response_class=HTMLResponse)
    def intel_page(request: Request, member: Viewer) -> Response:
        f = _filters(request)
        collections = [c for c in list_collections(store, config.api_root) if member.may_read(c.id, c.alias)]
        objs = _objects(request, member, f)
        return _render(request, "intel.html", member, collections=collections, objects=objs[:500],
                       total=len(objs), f=f, tlp_levels=TLP_LEVELS, query=str(request.url.query),
                       types=("indicator", "campaign", "sighting", "attack-pattern", "identity", "relationship"))

    @app.get("/intel/export")
    def intel_export(request: Request, member: Viewer, format: str = "stix") -> Response:  # noqa: A002
        f = _filters(request)
        objs = _objects(request, member, f)
        if format == "stix":
            return Response(json.dumps(stix_bundle(objs), indent=1), media_type="application/stix+json;version=2.1",
                            headers={"Content-Disposition": 'attachment; filename="mamori-intel.json"'})
        if format == "csv":
            return Response(csv_export(objs), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="mamori-intel.csv"'})
        if format == "nginx":
            return PlainTextResponse(nginx_deny_list(objs),
                                     headers={"Content-Disposition": 'attachment; filename="mamori-deny.conf"'})
        raise HTTPException(400, f"format must be stix, csv or nginx, got {format[:50]!r}")

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, member: Viewer) -> Response:
        alerts = load_alerts(config.alerts_dir, member)
        return _render(request, "alerts.html", member, alerts=alerts, configured=config.alerts_dir is not None)

    @app.get("/alerts/labels.csv")
    def alert_labels(member: Viewer) -> Response:
        # Registered before /alerts/{alert_id} so the path is not read as an alert id.
        labels = verdict_labels(config.alerts_dir, member, window_seconds=config.label_window_seconds)
        return Response(verdict_labels_csv(labels), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{VERDICT_LABELS_FILE}"'})

    def _one_alert(member: Member, alert_id: str) -> dict[str, Any]:
        for a in load_alerts(config.alerts_dir, member):
            if a["id"] == alert_id:
                return a
        raise HTTPException(404, f"no alert {alert_id[:100]!r} among your alerts")

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_detail(request: Request, alert_id: str, member: Viewer) -> Response:
        return _render(request, "alert.html", member, alert=_one_alert(member, alert_id), notice="")

    @app.post("/alerts/{alert_id}/verdict", response_class=HTMLResponse)
    def alert_verdict(request: Request, alert_id: str, member: Viewer, verdict: Annotated[str, Form()] = "",
                      csrf: Annotated[str, Form()] = "") -> Response:
        if not secrets.compare_digest(csrf, request.state.csrf):
            raise HTTPException(403, "the form is stale; reload the page and try again")
        if verdict not in VERDICTS:
            raise HTTPException(400, f"verdict must be one of {', '.join(VERDICTS)}, got {verdict[:50]!r}")
        alert = _one_alert(member, alert_id)
        assert config.alerts_dir is not None  # _one_alert found it there
        record_verdict(config.alerts_dir, member, alert_id, verdict, store)
        notice = "Marked as a false positive."
        if verdict == "confirmed":
            try:
                added = publish_sightings(store, member, alert, api_root=config.api_root,
                                          collection=config.sightings_collection, tlp=config.sightings_tlp)
                notice = f"Confirmed; shared with the consortium as sightings ({added} new STIX objects)."
            except IntelError as exc:
                notice = f"Confirmed, but not shared: {exc}"
        return _render(request, "alert.html", member, alert=_one_alert(member, alert_id), notice=notice)

    def _reports() -> list[Path]:
        d = config.results_dir
        return sorted(p for p in d.glob("*.html") if p.is_file()) if d is not None and d.is_dir() else []

    @app.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request, member: Viewer) -> Response:
        reports = [{"name": p.name, "size": p.stat().st_size,
                    "modified": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(p.stat().st_mtime))}
                   for p in _reports()]
        return _render(request, "reports.html", member, reports=reports)

    @app.get("/reports/{name}")
    def report_file(name: str, member: Viewer) -> Response:
        for p in _reports():
            if p.name == name:
                # Reports are self-contained HTML with inline styles and images: allow those, nothing external.
                return FileResponse(p, media_type="text/html", headers={
                    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                               "font-src data:; frame-ancestors 'none'; sandbox"})
        raise HTTPException(404, f"no report named {name[:100]!r}")

    return app


def serve_dashboard(store: Store, config: DashboardConfig | None = None, *, host: str = "127.0.0.1",
                    port: int = 8080, log_level: str = "info") -> None:
    """Serve the dashboard with uvicorn until interrupted.

    Parameters
    ----------
    store : Store
        The open store.
    config : DashboardConfig or None, default=None
        Settings.
    host : str, default="127.0.0.1"
        Interface to bind.
    port : int, default=8080
        TCP port.
    log_level : str, default="info"
        uvicorn log level.
    """
    import uvicorn

    uvicorn.run(create_dashboard_app(store, config), host=host, port=port, log_level=log_level)
