"""The adversarial-vulnerability assessment: measure a scoring model, write ``assessment.{json,html,pdf}``."""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import io
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from mamori.assess.constrained import ATTACKER_CONTROLS, controlled_columns, mimicry_evasion
from mamori.assess.evasion import gradient_evasion, hopskipjump_evasion
from mamori.assess.harden import harden_model
from mamori.errors import ConfigError, SchemaError
from mamori.features import extract_features, labels_from_events
from mamori.models import evaluate_by_family, evaluate_scores, explain

__all__ = ["AssessConfig", "find_chromium", "print_pdf", "render_html", "run_assessment", "write_assessment"]

logger = logging.getLogger(__name__)

THREAT_MODEL = [
    {"actor": "Coordinator", "trust": "honest but curious",
     "concern": "sees every member's model update; could try to infer members' customers from them",
     "controls": "secure aggregation / differential privacy on updates; audit log of every round"},
    {"actor": "Malicious member", "trust": "untrusted",
     "concern": "sends poisoned updates to blind the shared model to its own or a partner's attacks",
     "controls": "robust aggregation (trimmed mean, norm clipping), per-round model hashes, quorum on deployment"},
    {"actor": "Evasive external attacker", "trust": "untrusted",
     "concern": "changes request rate, IPs, user agent and payload encoding until it is no longer alerted",
     "controls": "measured below (evasion); behaviour features the attacker does not control"},
    {"actor": "Insider at a member", "trust": "partly trusted",
     "concern": "reads scores or models to learn how to evade, or tampers with logs or the audit trail",
     "controls": "hash-chained audit log (verified below when a store is given), PKI-signed model deployment"},
]


class AssessConfig(BaseModel):
    """What ``mamori assess`` measures and how hard the attacks try.

    Parameters
    ----------
    n_evasion : int, default=200
        Alerted attack rows (seeded sample) attacked by the gradient and mimicry attacks.
    n_hopskipjump : int, default=20
        Rows attacked by HopSkipJump (it is query-hungry).
    hsj_max_iter : int, default=10
        HopSkipJump iterations.
    hsj_max_eval : int, default=200
        HopSkipJump gradient-estimation queries per iteration (at most).
    epsilons : tuple of float
        Gradient-attack budgets (L-infinity, standard deviations per feature).
    pgd_max_iter : int, default=10
        PGD iterations per budget.
    efforts : tuple of float
        Mimicry efforts (share of the way from attack to benign behaviour on the controlled columns).
    n_explain : int, default=5
        Sample alerts explained feature by feature.
    target_fpr : float, default=0.005
        The false-positive rate the model's threshold was calibrated for (findings compare against it).
    seed : int, default=0
        Seeds every sample and attack.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_evasion: int = Field(default=200, ge=1)
    n_hopskipjump: int = Field(default=20, ge=1)
    hsj_max_iter: int = Field(default=10, ge=1)
    hsj_max_eval: int = Field(default=200, ge=1)
    epsilons: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    pgd_max_iter: int = Field(default=10, ge=1)
    efforts: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    n_explain: int = Field(default=5, ge=0)
    target_fpr: float = Field(default=0.005, gt=0.0, lt=1.0)
    seed: int = 0


def _versions() -> dict[str, str]:
    out = {}
    for name in ("mamori", "torch", "adversarial-robustness-toolbox", "numpy", "polars", "flwr"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _calibration(y: np.ndarray, logits: np.ndarray, bins: int = 10) -> dict[str, Any]:
    p = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        conf, freq = float(p[sel].mean()), float(y[sel].mean())
        ece += sel.mean() * abs(conf - freq)
        rows.append({"bin_low": float(edges[b]), "bin_high": float(edges[b + 1]), "n": int(sel.sum()),
                     "mean_predicted": conf, "observed_attack_rate": freq})
    return {"ece": float(ece), "brier": float(np.mean((p - y) ** 2)), "bins": rows}


def _drift(y: np.ndarray, logits: np.ndarray, days: np.ndarray, threshold: float) -> dict[str, Any]:
    per_day = []
    for day in np.unique(days):
        sel = days == day
        benign, attack = sel & (y == 0), sel & (y == 1)
        per_day.append({
            "day": str(day),
            "events": int(sel.sum()),
            "fpr": float((logits[benign] > threshold).mean()) if benign.any() else float("nan"),
            "tpr": float((logits[attack] > threshold).mean()) if attack.any() else float("nan"),
            "benign_mean_logit": float(logits[benign].mean()) if benign.any() else float("nan"),
        })
    out: dict[str, Any] = {"per_day": per_day}
    if len(per_day) >= 2:
        first, last = per_day[0], per_day[-1]
        out["first_day"], out["last_day"] = first["day"], last["day"]
        out["benign_logit_shift"] = last["benign_mean_logit"] - first["benign_mean_logit"]
        out["fpr_change"] = last["fpr"] - first["fpr"]
    return out


def _prepare(model: Any, events: pl.DataFrame) -> dict[str, Any]:
    if "organization.id" not in events.columns:
        raise SchemaError("run_assessment: the events have no 'organization.id' column; it names each member.")
    parts = events.partition_by("organization.id", maintain_order=True, as_dict=True)
    Xs, ys, fams, members, days = [], [], [], [], []  # noqa: N806
    for key, frame in sorted(parts.items(), key=lambda kv: str(kv[0][0])):
        matrix = extract_features(frame, model.feature_config)
        if tuple(matrix.spec.names) != tuple(model.spec.names):
            raise SchemaError(
                f"run_assessment: the features of member {key[0]!r} do not match the model's columns "
                f"({matrix.spec.n_features} vs {model.spec.n_features}); assess with the model's feature config."
            )
        y, fam = labels_from_events(frame)
        Xs.append(matrix.X)
        ys.append(y)
        fams.append(fam)
        members.append(np.full(len(y), str(key[0]), dtype=object))
        if "@timestamp" in frame.columns:
            days.append(frame.get_column("@timestamp").dt.date().cast(pl.String).to_numpy().astype(object))
        else:
            days.append(np.full(len(y), "all", dtype=object))
    return {
        "X": np.concatenate(Xs).astype(np.float32), "y": np.concatenate(ys), "family": np.concatenate(fams),
        "member": np.concatenate(members), "day": np.concatenate(days),
    }


def _registry_section(db: str | None, name: str) -> dict[str, Any]:
    if db is None:
        return {"source": "none"}
    from mamori.store import AuditLog, ModelRegistry, PrivacyLedger, open_store

    store = open_store(db)
    try:
        records = ModelRegistry(store).list(name) or ModelRegistry(store).list()
        rounds = [{"name": r.name, "round": int(r.version), "sha256": r.sha256, "created_at": r.created_at}
                  for r in records]
        report = AuditLog(store).verify()
        audit = {"ok": bool(report.ok), "rows_checked": int(report.rows_checked), "first_bad_id": report.first_bad_id,
                 "reason": report.reason, "head_hash": report.head_hash}
        epsilon = [{"member": t.member, "unit": t.unit, "epsilon": float(t.epsilon), "delta": float(t.delta),
                    "runs": int(t.runs), "rounds": int(t.rounds), "mechanisms": list(t.mechanisms)}
                   for t in PrivacyLedger(store).totals()]
    finally:
        store.close()
    return {"source": db, "rounds": rounds, "audit_log": audit, "epsilon_ledger": epsilon}


def _findings(result: dict[str, Any], config: AssessConfig) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []

    def add(severity: str, title: str, evidence: str, remediation: str) -> None:
        findings.append({"severity": severity, "title": title, "evidence": evidence, "remediation": remediation})

    ev = result["evasion"]
    combined = ev["constrained"]["mimicry"]["all_controls"][-1]["success_rate"]
    sev = "high" if combined >= 0.5 else "medium" if combined >= 0.2 else "low"
    add(sev, "Attacker-controlled behaviour evades detection",
        f"{combined:.0%} of alerted attacks were no longer alerted after copying benign rate/timing, IP/ASN, "
        "user-agent and payload-encoding behaviour (full effort).",
        "Weight features the attacker cannot control (victim history, cross-member indicators); retrain with "
        "these adversarial examples; alert on rotation itself (many IPs per username).")
    for cap, rows in ev["constrained"]["mimicry"]["per_control"].items():
        rate = rows[-1]["success_rate"]
        if rate >= 0.2:
            add("medium", f"Single capability '{cap}' evades detection",
                f"{rate:.0%} evasion changing only {ATTACKER_CONTROLS[cap]['description']}.",
                "Reduce the model's reliance on these columns or add rules that do not depend on them.")
    pgd = ev["gradient"]["constrained"]
    mid = pgd[min(len(pgd) - 1, len(pgd) // 2)]
    if mid["success_rate"] >= 0.2:
        add("medium", "Small gradient perturbations of controlled features evade detection",
            f"PGD with budget {mid['epsilon']} standard deviations on attacker-controlled columns only: "
            f"{mid['success_rate']:.0%} evasion.",
            "Adversarial training on constrained PGD examples; monotonic constraints on rate features.")
    hsj = ev["hopskipjump"]["success_rate"]
    if hsj >= 0.2:
        add("medium", "Black-box decision attack finds evasions",
            f"HopSkipJump, seeing only alert/no-alert, evaded on {hsj:.0%} of attacked rows "
            f"using {ev['hopskipjump']['queries']:.0f} model decisions.",
            "Do not expose per-request alert decisions to the requester; rate-limit and monitor probing.")
    perf = result["performance"]
    for fam, row in perf["by_family"].items():
        tpr = row.get("recall")
        if tpr is not None and not math.isnan(tpr) and tpr < 0.5:
            add("medium", f"Weak detection of family '{fam}'", f"Detection rate {tpr:.0%} at the member threshold.",
                "Share more labelled examples of this family across the consortium; add family-specific features.")
    for member, row in perf["by_member"].items():
        fpr = row.get("fpr")
        if fpr is not None and not math.isnan(fpr) and fpr > 2 * config.target_fpr:
            add("medium", f"False-positive rate above target at {member}",
                f"FPR {fpr:.2%} against a target of {config.target_fpr:.2%}.",
                "Recalibrate the member's threshold on its own recent benign traffic.")
    ece = perf["calibration"]["ece"]
    add("low" if ece < 0.1 else "medium", "Score calibration", f"Expected calibration error {ece:.3f}.",
        "Scores are ranked, not read as probabilities; recalibrate (Platt / isotonic) before showing probabilities.")
    audit = result["system_card"]["registry"].get("audit_log")
    if audit is not None and not audit["ok"]:
        add("critical", "Audit log fails verification", f"First bad row {audit['first_bad_id']}: {audit['reason']}",
            "Investigate tampering; restore from backup; rotate credentials.")
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    findings.sort(key=lambda f: order[f["severity"]])
    return findings


def run_assessment(
    model: Any,
    events: pl.DataFrame,
    config: AssessConfig | None = None,
    *,
    db: str | None = None,
    poisoning: dict[str, Any] | None = None,
    privacy: dict[str, Any] | None = None,
    command: str = "run_assessment()",
    harden_to: Path | None = None,
) -> dict[str, Any]:
    """Measure a scoring model's performance and adversarial robustness on labelled events.

    Parameters
    ----------
    model : ScoringModel
        The bundle (:class:`mamori.detect.ScoringModel`): feature spec, standardiser, weights, threshold.
        Only the attack classifier is supported.
    events : polars.DataFrame
        Labelled canonical events (``labels.is_attack``, ``labels.attack_family``, ``organization.id``).
    config : AssessConfig or None, default=None
        Attack budgets and samples; None uses ``AssessConfig()``.
    db : str or None, default=None
        Store URL with the model registry and audit log (round hashes, audit verification).
    poisoning : dict or None, default=None
        Output of ``benchmarks/poisoning.py`` (``poisoning.json``), reported as is.
    privacy : dict or None, default=None
        A membership-inference audit (``MembershipAuditReport.to_dict()``), reported as is.
    command : str, default="run_assessment()"
        The command that ran the assessment (red-team record).
    harden_to : pathlib.Path or None, default=None
        When given, run the hardening loop (:func:`~mamori.assess.harden_model`), save the hardened bundle
        there and report evasion before and after under ``"hardening"``.

    Returns
    -------
    dict
        The content of ``assessment.json``.

    Raises
    ------
    ConfigError
        If the model is not an attack classifier or the events hold no alerted attack.
    SchemaError
        If the events lack labels or member ids, or yield other columns than the model's.
    """
    config = config if config is not None else AssessConfig()
    if model.kind != "attack-classifier":
        raise ConfigError(f"run_assessment: only 'attack-classifier' bundles can be assessed; got {model.kind!r}.")
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    log: list[dict[str, Any]] = []

    def record(step: str, what: str, t0: float) -> None:
        log.append({"step": step, "what": what, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "seconds": round(time.perf_counter() - t0, 3)})

    t0 = time.perf_counter()
    data = _prepare(model, events)
    detector, standardizer = model.detector(), model.standardizer()
    X, y = data["X"], data["y"]  # noqa: N806
    Xs = standardizer.transform(X).astype(np.float32)  # noqa: N806
    logits = detector.decision_function(Xs)
    thr = float(model.threshold)
    record("performance", "features, scores, per-member / per-family metrics, calibration, drift", t0)

    by_member = {}
    for member in sorted(set(data["member"].tolist())):
        sel = data["member"] == member
        by_member[member] = evaluate_scores(y[sel], logits[sel], thr)
    performance = {
        "overall": evaluate_scores(y, logits, thr),
        "by_member": by_member,
        "by_family": evaluate_by_family(y, data["family"], logits, thr),
        "calibration": _calibration(y, logits),
        "drift": _drift(y, logits, data["day"], thr),
        "threshold": thr,
    }

    # ---- evasion -------------------------------------------------------------------------------------------
    rng = np.random.default_rng(config.seed)
    alerted = np.flatnonzero((y == 1) & (logits > thr))
    if len(alerted) == 0:
        raise ConfigError("run_assessment: no attack event is alerted by the model; there is nothing to evade.")
    pick = np.sort(rng.choice(alerted, size=min(config.n_evasion, len(alerted)), replace=False))
    benign = np.flatnonzero(y == 0)
    clip = (Xs.min(axis=0), Xs.max(axis=0))  # stay within values seen in real traffic
    cols = controlled_columns(model.spec)
    union = np.unique(np.concatenate(list(cols.values()))) if cols else np.zeros(0, dtype=np.int64)
    mask = np.zeros(model.spec.n_features, dtype=np.float32)
    mask[union] = 1.0

    def score_raw(rows: np.ndarray) -> np.ndarray:
        return detector.decision_function(standardizer.transform(rows).astype(np.float32))

    t0 = time.perf_counter()
    net = detector.network_
    pgd_free = gradient_evasion(net, thr, Xs[pick], config.epsilons, clip=clip, max_iter=config.pgd_max_iter)
    record("gradient (unconstrained)", f"ART ProjectedGradientDescent L-inf, {len(pick)} rows", t0)
    t0 = time.perf_counter()
    pgd_con = gradient_evasion(net, thr, Xs[pick], config.epsilons, mask=mask, clip=clip,
                               max_iter=config.pgd_max_iter)
    record("gradient (domain-constrained)", f"ART PGD masked to {len(union)} attacker-controlled columns", t0)
    t0 = time.perf_counter()
    hsj_rows = pick[: config.n_hopskipjump]
    starts = Xs[rng.choice(benign, size=len(hsj_rows))] if len(benign) else None
    hsj = hopskipjump_evasion(net, thr, Xs[hsj_rows], X_init=starts, clip=clip, max_iter=config.hsj_max_iter,
                              max_eval=config.hsj_max_eval, seed=config.seed)
    record("black-box decision attack", f"ART HopSkipJump L2, {len(hsj_rows)} rows", t0)
    t0 = time.perf_counter()
    X_benign = X[benign] if len(benign) else X  # noqa: N806
    mimic = {
        "unconstrained": mimicry_evasion(score_raw, X[pick], X_benign, thr, None, config.efforts, seed=config.seed),
        "all_controls": mimicry_evasion(score_raw, X[pick], X_benign, thr, union, config.efforts, seed=config.seed),
        "per_control": {
            cap: mimicry_evasion(score_raw, X[pick], X_benign, thr, idx, config.efforts, seed=config.seed)
            for cap, idx in cols.items()
        },
    }
    record("domain-constrained mimicry", "copy benign behaviour on controlled columns, by effort", t0)
    evasion = {
        "n_alerted_attacks": int(len(alerted)),
        "n_attacked": int(len(pick)),
        "hopskipjump": hsj,
        "gradient": {"unconstrained": pgd_free, "constrained": pgd_con, "max_iter": config.pgd_max_iter},
        "constrained": {
            "controls": {cap: {"description": ATTACKER_CONTROLS[cap]["description"],
                               "columns": [model.spec.names[i] for i in idx.tolist()]}
                         for cap, idx in cols.items()},
            "n_controlled_columns": int(len(union)),
            "mimicry": mimic,
        },
    }

    # ---- explainability ------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    sample = pick[: max(config.n_explain, 1)]
    global_rows = pick[: min(len(pick), 100)]
    totals: dict[str, float] = {}
    for e in explain(detector, Xs[global_rows], model.spec, top_k=10):
        for c in e.top:
            totals[c.name] = totals.get(c.name, 0.0) + float(c.contribution) / len(global_rows)
    top_global = sorted(totals.items(), key=lambda kv: -kv[1])[:10]
    explanations = {
        "global": [{"name": n, "group": model.spec.groups[model.spec.index(n)], "mean_contribution": v}
                   for n, v in top_global],
        "samples": [
            {"member": str(data["member"][i]), "family": str(data["family"][i]), **e.to_dict()}
            for i, e in zip(sample[: config.n_explain], explain(detector, Xs[sample[: config.n_explain]],
                                                                 model.spec, top_k=5), strict=True)
        ] if config.n_explain else [],
    }
    record("explainability", "integrated gradients over alerted attacks", t0)

    hardening = None
    if harden_to is not None:
        t0 = time.perf_counter()
        hardened, hardening = harden_model(model, X, y, efforts=config.efforts, seed=config.seed)
        hardening["model_path"] = str(hardened.save(harden_to))
        hardening["model_sha256"] = hardened.sha256
        record("hardening", "fine-tune on domain-constrained mimicry examples; same FPR; evasion before/after", t0)

    members = []
    for member in sorted(set(data["member"].tolist())):
        sel = data["member"] == member
        members.append({"member": member, "events": int(sel.sum()), "attacks": int(y[sel].sum())})
    result: dict[str, Any] = {
        "system_card": {
            "purpose": ("Detect account-takeover, credential-stuffing, fraud and injection attacks in retail-banking "
                        "API traffic, one alert per suspicious request, trained federatedly across member banks."),
            "model": {"name": model.name, "version": int(model.version), "kind": model.kind,
                      "sha256": model.sha256, "weights_sha256": model.weights_sha256,
                      "n_features": int(model.spec.n_features), "threshold": thr,
                      "params": json.loads(json.dumps(model.params, default=str)),
                      "metadata": json.loads(json.dumps(model.metadata, default=str))},
            "members": members,
            "registry": _registry_section(db, model.name),
            "versions": _versions(),
            "seed": config.seed,
            "hardware": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "config": json.loads(config.model_dump_json()),
        },
        "threat_model": THREAT_MODEL,
        "performance": performance,
        "evasion": evasion,
        "poisoning": poisoning,
        "privacy": privacy,
        "explainability": explanations,
        "hardening": hardening,
    }
    result["findings"] = _findings(result, config)
    result["red_team"] = {
        "planning": {
            "scope": f"model {model.name} v{model.version} ({model.sha256[:12]}), {len(y):,} labelled events "
                     f"from {len(members)} member(s)",
            "objectives": ["measure detection per member and family", "measure evasion by unconstrained and "
                           "domain-constrained attackers", "report poisoning and privacy evidence"],
            "threat_model": "see threat model section",
        },
        "execution": {"started": started.isoformat(timespec="seconds"), "by": getpass.getuser(), "command": command,
                      "steps": log},
        "reporting": {"findings": len(result["findings"]),
                      "not_assessed": [k for k in ("poisoning", "privacy") if result[k] is None]
                      + ([] if db else ["registry round hashes and audit-log verification (no --db given)"])},
    }
    result["seconds"] = time.perf_counter() - clock
    return result


# ---- rendering -----------------------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(result: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = result["evasion"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    mim = ev["constrained"]["mimicry"]
    for label, rows, style in (("every feature (unconstrained)", mim["unconstrained"], "k--"),
                               ("attacker-controlled only", mim["all_controls"], "r-")):
        axes[0].plot([r["effort"] for r in rows], [r["success_rate"] for r in rows], style, marker="o", label=label)
    axes[0].set(xlabel="effort (share of the way to benign behaviour)", ylabel="evasion success rate",
                title="Mimicry (black-box)", ylim=(-0.02, 1.02))
    axes[0].legend(fontsize=8)
    for label, rows, style in (("every feature (unconstrained)", ev["gradient"]["unconstrained"], "k--"),
                               ("attacker-controlled only", ev["gradient"]["constrained"], "r-")):
        axes[1].plot([r["epsilon"] for r in rows], [r["success_rate"] for r in rows], style, marker="o", label=label)
    axes[1].set(xlabel="budget (standard deviations per feature)", ylabel="evasion success rate",
                title="PGD (white-box gradient)", ylim=(-0.02, 1.02))
    axes[1].legend(fontsize=8)
    evasion_png = _png(fig)
    cal = result["performance"]["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(4, 3.2))
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    ax.plot([b["mean_predicted"] for b in cal], [b["observed_attack_rate"] for b in cal], "b-o", label="model")
    ax.set(xlabel="predicted attack probability", ylabel="observed attack share", title="Calibration")
    ax.legend(fontsize=8)
    return {"evasion": evasion_png, "calibration": _png(fig)}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def render_html(result: dict[str, Any]) -> str:
    """Render the assessment as one self-contained HTML page (figures embedded, nothing loaded from outside).

    Parameters
    ----------
    result : dict
        The output of :func:`run_assessment`.

    Returns
    -------
    str
    """
    env = jinja2.Environment(loader=jinja2.PackageLoader("mamori.assess", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    env.filters["f"] = _fmt
    env.filters["pct"] = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"
    return env.get_template("assessment.html.j2").render(r=result, plots=_plots(result),
                                                        controls=ATTACKER_CONTROLS)


def find_chromium() -> str | None:
    """Return the path of a Chromium executable, or None when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def print_pdf(html_path: Path, pdf_path: Path, *, chromium: str | None = None, timeout: float = 120.0) -> bool:
    """Print an HTML file to PDF with headless Chromium.

    Parameters
    ----------
    html_path, pdf_path : pathlib.Path
        Input page and output file.
    chromium : str or None, default=None
        The executable; None searches PATH (:func:`find_chromium`).
    timeout : float, default=120.0
        Seconds before giving up.

    Returns
    -------
    bool
        True when the PDF was written; False when no Chromium is installed or printing failed (logged).
    """
    exe = chromium or find_chromium()
    if exe is None:
        logger.warning("print_pdf: no chromium on PATH; %s not written (apt-get install chromium).", pdf_path)
        return False
    with tempfile.TemporaryDirectory(prefix="mamori-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--no-pdf-header-footer", f"--print-to-pdf={pdf_path.resolve()}", html_path.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("print_pdf: chromium failed on %s: %s", html_path, exc)
            return False
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        logger.warning("print_pdf: chromium exited %s for %s: %s", done.returncode, html_path,
                       done.stderr.decode(errors="replace")[-500:])
        return False
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value


def write_assessment(result: dict[str, Any], out_dir: Path, *, pdf: bool = True) -> dict[str, Path | None]:
    """Write ``assessment.json``, ``assessment.html`` and (when Chromium is installed) ``assessment.pdf``.

    Parameters
    ----------
    result : dict
        The output of :func:`run_assessment`.
    out_dir : pathlib.Path
        Created if missing.
    pdf : bool, default=True
        Try to print the PDF.

    Returns
    -------
    dict
        ``{"json": path, "html": path, "pdf": path or None}`` (None when the PDF was not written).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path, pdf_path = (out_dir / f"assessment.{ext}" for ext in ("json", "html", "pdf"))
    json_path.write_text(json.dumps(_nan_to_none(result), indent=2, default=_json_default, allow_nan=False))
    html_path.write_text(render_html(result), encoding="utf-8")
    written = print_pdf(html_path, pdf_path) if pdf else False
    return {"json": json_path, "html": html_path, "pdf": pdf_path if written else None}
