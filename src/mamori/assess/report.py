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
from mamori.assess.controls import inspect_pki, inspect_store
from mamori.assess.demo import IN_TRAINING
from mamori.assess.evasion import gradient_evasion, hopskipjump_evasion
from mamori.assess.harden import harden_model
from mamori.assess.poisoning import PoisoningConfig, measure_poisoning
from mamori.assess.privacy import MembershipAuditConfig, audit_membership
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
    poisoning : PoisoningConfig or None, default=PoisoningConfig()
        The small poisoning experiment run when no poisoning results are given; None skips it.
    n_membership : int, default=2000
        Training rows and as many held-out rows (at most) in the membership-inference audit.
    membership_attacks : tuple of str, default=("loss", "art")
        Attacks of :func:`~mamori.assess.audit_membership` (``"lira"`` needs shadow models and is not run here).
    timezone : str, default="Asia/Tokyo"
        Time zone the per-day figures and the latest day are counted in (the members' business day).
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
    poisoning: PoisoningConfig | None = PoisoningConfig()
    n_membership: int = Field(default=2000, ge=50)
    membership_attacks: tuple[str, ...] = ("loss", "art")
    timezone: str = "Asia/Tokyo"
    seed: int = 0

    @classmethod
    def quick(cls, seed: int = 0) -> AssessConfig:
        """Small budgets for CI and smoke runs: every section is still measured, with fewer rows and rounds."""
        return cls(n_evasion=30, n_hopskipjump=3, hsj_max_iter=3, hsj_max_eval=50, epsilons=(0.5, 1.0, 2.0),
                   pgd_max_iter=5, efforts=(0.5, 0.75, 1.0), n_explain=3, n_membership=500, seed=seed,
                   poisoning=PoisoningConfig(banks=3, days=2, scale=0.01, rounds=1, attacks=("backdoor",),
                                             max_benign=500, seed=seed + 1))


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


def _psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` on the expected deciles (0 = no shift)."""
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.clip(np.histogram(expected, edges)[0] / len(expected), 1e-4, None)
    a = np.clip(np.histogram(actual, edges)[0] / len(actual), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _window(sel: np.ndarray, y: np.ndarray, margin: np.ndarray) -> dict[str, Any]:
    benign, attack = sel & (y == 0), sel & (y == 1)
    return {
        "events": int(sel.sum()),
        "attacks": int(attack.sum()),
        "fpr": float((margin[benign] > 0).mean()) if benign.any() else float("nan"),
        "tpr": float((margin[attack] > 0).mean()) if attack.any() else float("nan"),
        "benign_mean_margin": float(margin[benign].mean()) if benign.any() else float("nan"),
    }


def _drift(y: np.ndarray, margin: np.ndarray, days: np.ndarray, train_window: np.ndarray | None,
           Xs: np.ndarray, names: list[str]) -> dict[str, Any]:  # noqa: N803
    """Per-day figures, and the training window against the latest day: rates, score shift (PSI), feature shift.

    ``margin`` is the score minus the threshold that applies to the row (alert when > 0).
    """
    per_day = [{"day": str(day), **_window(days == day, y, margin)} for day in np.unique(days)]
    latest_day = str(np.unique(days)[-1])
    latest = days == latest_day
    if train_window is not None and train_window.any():
        train, definition = train_window, "the days the model trained on"
    else:
        first = np.unique(days)[0]
        train, definition = days == first, f"the first day ({first}), no training window given"
    out: dict[str, Any] = {
        "per_day": per_day,
        "training_window": {"definition": definition, **_window(train, y, margin)},
        "latest_window": {"definition": f"the latest day ({latest_day})", **_window(latest, y, margin)},
    }
    tb, lb = train & (y == 0) & ~latest, latest & (y == 0)
    if tb.any() and lb.any():
        out["benign_score_psi"] = _psi(margin[tb], margin[lb])
        out["fpr_change"] = out["latest_window"]["fpr"] - out["training_window"]["fpr"]
        out["tpr_change"] = out["latest_window"]["tpr"] - out["training_window"]["tpr"]
        # features already standardised with the consortium statistics: a difference of means is in standard deviations
        shift = Xs[lb].mean(axis=0, dtype=np.float64) - Xs[tb].mean(axis=0, dtype=np.float64)
        top = np.argsort(-np.abs(shift))[:8]
        out["feature_shift"] = [{"name": names[i], "mean_shift_sd": float(shift[i])} for i in top]
    else:
        out["note"] = "the latest day is inside the training window; no separate window to compare"
    return out


def _prepare(model: Any, events: pl.DataFrame, train_until: dt.datetime | None, timezone: str) -> dict[str, Any]:
    if "organization.id" not in events.columns:
        raise SchemaError("run_assessment: the events have no 'organization.id' column; it names each member.")
    parts = events.partition_by("organization.id", maintain_order=True, as_dict=True)
    Xs, ys, fams, members, days, in_training, groups, in_window = [], [], [], [], [], [], [], []  # noqa: N806
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
            ts = frame.get_column("@timestamp")
            local = (ts if getattr(ts.dtype, "time_zone", None) else ts.dt.replace_time_zone("UTC"))
            days.append(local.dt.convert_time_zone(timezone).dt.date().cast(pl.String).to_numpy().astype(object))
            if train_until is not None:
                # naive timestamps are taken as UTC, as the canonical schema stores them
                aware = getattr(ts.dtype, "time_zone", None) is not None
                cut = train_until.astimezone(dt.UTC)
                in_window.append((ts < (cut if aware else cut.replace(tzinfo=None))).to_numpy())
        else:
            days.append(np.full(len(y), "all", dtype=object))
        # 1 trained on, 0 held out (never seen), -1 unknown: only known when the events carry it (load_demo)
        flag = frame.get_column(IN_TRAINING).fill_null(-1) if IN_TRAINING in frame.columns else None
        in_training.append(np.full(len(y), -1, np.int8) if flag is None else flag.to_numpy().astype(np.int8))
        # the privacy unit for the membership audit: the customer, else the source address
        who = pl.Series([None] * frame.height, dtype=pl.String)
        if "user.id" in frame.columns:
            who = frame.get_column("user.id").cast(pl.String)
        if "source.ip" in frame.columns:
            who = who.fill_null(frame.select(pl.concat_str([pl.lit("ip:"), pl.col("source.ip").cast(pl.String)]))
                                .to_series())
        groups.append(who.fill_null("unknown").to_numpy().astype(object))
    return {
        "X": np.concatenate(Xs).astype(np.float32), "y": np.concatenate(ys), "family": np.concatenate(fams),
        "member": np.concatenate(members), "day": np.concatenate(days), "in_training": np.concatenate(in_training),
        "group": np.concatenate(groups),
        "train_window": np.concatenate(in_window) if len(in_window) == len(ys) else None,
    }


def _measure_privacy(config: AssessConfig, detector: Any, Xs: np.ndarray, data: dict[str, Any]  # noqa: N803
                     ) -> dict[str, Any] | None:
    """Membership inference on benign rows the model trained on against benign rows held out of the same window."""
    y, flag = data["y"], data["in_training"]
    members, held_out = np.flatnonzero((flag == 1) & (y == 0)), np.flatnonzero((flag == 0) & (y == 0))
    if len(members) == 0 or len(held_out) == 0:
        return None
    rng = np.random.default_rng(config.seed)
    n = min(config.n_membership, len(members), len(held_out))
    pick = np.sort(np.concatenate([rng.choice(members, n, replace=False), rng.choice(held_out, n, replace=False)]))
    audit = audit_membership(
        detector.decision_function, Xs[pick], y[pick], flag[pick] == 1,
        config=MembershipAuditConfig(attacks=config.membership_attacks, seed=config.seed), groups=data["group"][pick])
    out = audit.to_dict()
    out["population"] = (f"{n:,} benign events the model trained on and {n:,} benign events of the same training "
                         "window held out for threshold calibration (never trained on); seeded sample, class-matched")
    return out


def _poisoning_findings(result: dict[str, Any], add: Any) -> None:
    rows = (result.get("poisoning") or {}).get("rows") or []
    # benchmarks/poisoning.py calls the robust mode "default"; with several malicious counts the largest is kept
    by = {(("robust" if r.get("mode") == "default" else r.get("mode")), r.get("attack")): r
          for r in sorted(rows, key=lambda r: r.get("malicious", 0))}
    clean = by.get(("fedavg", "none"))
    federation = result["system_card"].get("federation") or {}
    if federation.get("secure_aggregation"):
        where = ("this consortium aggregates with SecAgg+, where the coordinator can only run plain FedAvg on the "
                 "masked sum")
    elif federation.get("aggregation") or federation.get("strategy"):
        where = f"the assessed federation aggregates with {federation.get('aggregation') or federation['strategy']}"
    else:
        where = "the assessed federation's aggregation was not given"
    backdoor, robust_bd = by.get(("fedavg", "backdoor")), by.get(("robust", "backdoor"))
    if clean and backdoor:
        gain = backdoor["backdoor_success"] - clean["backdoor_success"]
        add("high" if gain >= 0.2 else "medium" if gain >= 0.05 else "low",
            "Malicious members can plant a backdoor",
            f"With {backdoor['malicious']} malicious member(s), {backdoor['backdoor_success']:.0%} of attacks "
            "carrying the attacker's traffic pattern got through under FedAvg "
            f"(clean federation {clean['backdoor_success']:.0%})"
            + (f"; the robust mode held it to {robust_bd['backdoor_success']:.0%}" if robust_bd else "")
            + f"; {where}.",
            "Where members may see each other's updates, run the robust mode (update check, clipping, trimmed mean); "
            "under SecAgg+ have every member clip its own update (ClippedTrainer / member-level DP) and require "
            "quorum approval of each round's model hash before deployment.")
    flip, robust_flip = by.get(("fedavg", "sign_flip")), by.get(("robust", "sign_flip"))
    if clean and flip:
        drop = clean["pr_auc"] - flip["pr_auc"]
        add("high" if drop >= 0.1 else "medium" if drop >= 0.02 else "low",
            "A malicious member can degrade the shared model",
            f"Sign-flipped updates from {flip['malicious']} member(s) moved PR-AUC {clean['pr_auc']:.3f} -> "
            f"{flip['pr_auc']:.3f} under FedAvg"
            + (f" ({robust_flip['pr_auc']:.3f} under the robust mode)" if robust_flip else "") + f"; {where}.",
            "Run the robust mode where possible; otherwise compare each round's model on a held-out benign and attack "
            "set before deploying it and roll back on a drop.")


def _privacy_findings(result: dict[str, Any], add: Any) -> None:
    privacy = result.get("privacy") or {}
    audit = privacy.get("membership")
    if audit and audit.get("attacks"):
        worst_name, worst = max(audit["attacks"].items(), key=lambda kv: kv[1]["auc"])
        auc = worst["auc"]
        add("high" if auc >= 0.6 else "medium" if auc >= 0.55 else "low",
            "Membership inference against the model",
            f"The strongest attack ({worst_name}) tells training records from held-out ones with AUC {auc:.3f} "
            f"(0.5 is chance), advantage {worst['advantage']:.3f}.",
            "Train with customer-level DP-SGD (DPSGDTrainer) or member-level DP and record the spend in the privacy "
            "ledger; keep model scores inside the member.")
    if not privacy.get("epsilon_ledger"):
        add("medium", "No differential-privacy budget recorded",
            "The privacy ledger holds no spend" if privacy.get("ledger_state") == "empty" else
            "No store was given, so no privacy ledger was read",
            "Enable member-level or customer-level DP for the federation and keep the ledger in the consortium store.")


def _security_findings(result: dict[str, Any], add: Any) -> None:
    security = result["security"]
    audit = security["audit_log"]
    if audit.get("ok") is False:
        add("critical", "Audit log fails verification", f"First bad row {audit['first_bad_id']}: {audit['reason']}",
            "Investigate tampering; restore from backup; rotate credentials.")
    elif audit.get("ok") is None:
        add("medium", "Audit log not verified", "No store was given (--db), so the hash chain was not checked.",
            "Assess with the consortium store so the audit log is verified.")
    pki = security["pki"]
    if not pki["configured"]:
        in_process = "demo" in str((result["system_card"].get("federation") or {}).get("trained_by", ""))
        add("medium", "No PKI evidence for node authentication and TLS",
            "No PKI directory was given, so member keys and TLS certificates were not verified"
            + ("; the demo federation runs in-process, without either." if in_process else "."),
            "Run the coordinator with 'mamori pki init', register every member's node key, and assess with --pki.")
    else:
        for which in ("ca", "server"):
            cert = pki.get(which)
            if cert is None:
                add("high", f"PKI {which} certificate missing", f"No {which}.crt in {pki['directory']}.",
                    "Re-run 'mamori pki init' (CA) or 'mamori pki issue --server'.")
            elif cert["days_left"] < 30:
                add("high" if cert["days_left"] < 0 else "medium", f"PKI {which} certificate expires soon",
                    f"{cert['days_left']:.0f} days left (not after {cert['not_after']}).",
                    "Rotate the certificate before it expires ('mamori pki issue --server').")
        if not pki.get("private_key_files_mode_ok", True):
            add("high", "Private keys readable by other users", f"A *.key file in {pki['directory']} is not mode 0600.",
                "chmod 600 every private key; chmod 700 the PKI directory.")
    retention = security["retention"]
    if retention.get("automatic_expiry") is False:
        longest = max((k["span_days"] for k in retention["kinds"]), default=0.0)
        add("low", "No retention limit on audit records and model checkpoints",
            f"Nothing expires automatically; the oldest retained records span {longest:.1f} days.",
            "Set a retention period per record kind (regulatory record-keeping), archive the audit log with its head "
            "hash before pruning, and prune model checkpoints no longer deployed.")


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
            add("medium", f"Weak detection of family '{fam}'",
                f"Detection rate {tpr:.0%} at {perf['thresholds']} alert threshold.",
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
    drift = perf["drift"]
    if "benign_score_psi" in drift:
        psi = drift["benign_score_psi"]
        add("high" if psi >= 0.25 else "medium" if psi >= 0.1 else "low",
            "Drift between the training window and the latest day",
            f"Benign score PSI {psi:.3f} (0.1 moderate, 0.25 major); FPR {drift['training_window']['fpr']:.2%} -> "
            f"{drift['latest_window']['fpr']:.2%}, detection {drift['training_window']['tpr']:.1%} -> "
            f"{drift['latest_window']['tpr']:.1%}.",
            "Monitor the PSI daily; recalibrate thresholds when it passes 0.1 and retrain when it passes 0.25.")
    _poisoning_findings(result, add)
    _privacy_findings(result, add)
    _security_findings(result, add)
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
    member_thresholds: dict[str, float] | None = None,
    train_until: dt.datetime | None = None,
    pki_dir: Path | None = None,
    federation: dict[str, Any] | None = None,
    progress: Any = None,
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
        Output of ``benchmarks/poisoning.py`` (``poisoning.json``), reported as is. None runs the small poisoning
        experiment of ``config.poisoning`` (:func:`~mamori.assess.measure_poisoning`) unless that is None.
    privacy : dict or None, default=None
        A membership-inference audit (``MembershipAuditReport.to_dict()``), reported as is. None audits the model
        itself when the events carry the ``labels.in_training`` column (:func:`~mamori.assess.load_demo` adds it).
    command : str, default="run_assessment()"
        The command that ran the assessment (red-team record).
    harden_to : pathlib.Path or None, default=None
        When given, run the hardening loop (:func:`~mamori.assess.harden_model`), save the hardened bundle
        there and report evasion before and after under ``"hardening"``.
    member_thresholds : dict of str to float or None, default=None
        Each member's own alert threshold (the demo deploys one bundle per bank); performance and drift judge
        each member's events at its threshold. None applies the model's threshold to everyone. Evasion always
        attacks the model's threshold.
    train_until : datetime.datetime or None, default=None
        End of the training window; drift compares it with the latest day. None compares the first day.
    pki_dir : pathlib.Path or None, default=None
        The consortium's PKI directory (``mamori pki init``), read for the security-controls section.
    federation : dict or None, default=None
        Federation and privacy settings of the run that trained the model (rounds, strategy, secure aggregation,
        ...), shown on the system card; the demo's ``results.json`` ``meta.config.comparison``.
    progress : callable or None, default=None
        Called with a short description at the start of each step.

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

    say = progress or (lambda _what: None)
    marks: dict[str, str] = {}

    def begin(step: str) -> float:
        say(step)
        marks[step] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return time.perf_counter()

    def record(step: str, what: str, t0: float) -> None:
        log.append({"step": step, "what": what, "command": command,
                    "started": marks.get(step, started.isoformat(timespec="seconds")),
                    "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "seconds": round(time.perf_counter() - t0, 3)})

    t0 = begin("performance")
    data = _prepare(model, events, train_until, config.timezone)
    detector, standardizer = model.detector(), model.standardizer()
    X, y = data["X"], data["y"]  # noqa: N806
    Xs = standardizer.transform(X).astype(np.float32)  # noqa: N806
    logits = detector.decision_function(Xs)
    thr = float(model.threshold)
    thresholds = dict(member_thresholds or {})
    missing = sorted(set(data["member"].tolist()) - set(thresholds)) if thresholds else []
    if missing:
        raise ConfigError(f"run_assessment: member_thresholds has no threshold for member(s) {missing}.")
    row_thr = (np.array([thresholds[m] for m in data["member"]], dtype=np.float64) if thresholds
               else np.full(len(y), thr))
    margin = logits - row_thr  # alert when > 0, at each member's own threshold

    # judge on events the model did not train on when the events say which ones it did (load_demo)
    held = data["in_training"] != 1
    known = bool((data["in_training"] == 1).any())
    judged_held = known and bool((held & (y == 1)).any()) and bool((held & (y == 0)).any())
    ev_rows = held if judged_held else np.ones(len(y), bool)
    by_member = {}
    for member in sorted(set(data["member"].tolist())):
        sel = (data["member"] == member) & ev_rows
        by_member[member] = evaluate_scores(y[sel], logits[sel], thresholds.get(member, thr))
    performance = {
        "overall": evaluate_scores(y[ev_rows], margin[ev_rows], 0.0),
        "by_member": by_member,
        "by_family": evaluate_by_family(y[ev_rows], data["family"][ev_rows], margin[ev_rows], 0.0),
        "calibration": _calibration(y[ev_rows], logits[ev_rows]),
        "drift": _drift(y, margin, data["day"], data["train_window"], Xs, list(model.spec.names)),
        "threshold": thr,
        "thresholds": "each member's own" if thresholds else "the model's",
        "judged_on": "events the model did not train on" if judged_held else "every event given",
        "n_rows": int(ev_rows.sum()),
    }
    record("performance", "features, scores, per-member / per-family metrics, calibration, drift", t0)

    # ---- evasion -------------------------------------------------------------------------------------------
    rng = np.random.default_rng(config.seed)
    alerted = np.flatnonzero((y == 1) & (logits > thr) & ev_rows)
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

    t0 = begin("gradient (unconstrained)")
    net = detector.network_
    pgd_free = gradient_evasion(net, thr, Xs[pick], config.epsilons, clip=clip, max_iter=config.pgd_max_iter)
    record("gradient (unconstrained)", f"ART ProjectedGradientDescent L-inf, {len(pick)} rows", t0)
    t0 = begin("gradient (domain-constrained)")
    pgd_con = gradient_evasion(net, thr, Xs[pick], config.epsilons, mask=mask, clip=clip,
                               max_iter=config.pgd_max_iter)
    record("gradient (domain-constrained)", f"ART PGD masked to {len(union)} attacker-controlled columns", t0)
    t0 = begin("black-box decision attack")
    hsj_rows = pick[: config.n_hopskipjump]
    starts = Xs[rng.choice(benign, size=len(hsj_rows))] if len(benign) else None
    hsj = hopskipjump_evasion(net, thr, Xs[hsj_rows], X_init=starts, clip=clip, max_iter=config.hsj_max_iter,
                              max_eval=config.hsj_max_eval, seed=config.seed)
    record("black-box decision attack", f"ART HopSkipJump L2, {len(hsj_rows)} rows", t0)
    t0 = begin("domain-constrained mimicry")
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
    t0 = begin("explainability")
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
        t0 = begin("hardening")
        hardened, hardening = harden_model(model, X, y, efforts=config.efforts, seed=config.seed)
        hardening["model_path"] = str(hardened.save(harden_to))
        hardening["model_sha256"] = hardened.sha256
        record("hardening", "fine-tune on domain-constrained mimicry examples; same FPR; evasion before/after", t0)

    # ---- poisoning and privacy leakage: given results, else measured here -----------------------------------
    if poisoning is not None:
        poisoning = {**poisoning, "source": poisoning.get("source", "results file given on the command line")}
    elif config.poisoning is not None:
        t0 = begin("poisoning")
        poisoning = measure_poisoning(config.poisoning, progress=say)
        pc = config.poisoning
        record("poisoning", f"{pc.banks}-bank simulated consortium, {pc.n_malicious} malicious member(s) "
               f"({', '.join(pc.attacks)}), {pc.rounds} Flower rounds, FedAvg vs the robust mode", t0)
    t0 = begin("security controls")
    store = inspect_store(db)
    security = {
        "pki": inspect_pki(pki_dir),
        "audit_log": store.get("audit_log", {"ok": None, "rows": 0, "reason": "no store given (--db)"}),
        "retention": store.get("retention", {"automatic_expiry": None, "kinds": []}),
    }
    record("security controls", "PKI directory read; audit-log hash chain verified; retained records counted", t0)
    if privacy is not None:
        membership: dict[str, Any] | None = {**privacy, "population": privacy.get("population", "given on the "
                                                                                     "command line")}
    else:
        t0 = begin("membership inference")
        membership = _measure_privacy(config, detector, Xs, data)
        if membership is not None:
            record("membership inference", f"attacks {', '.join(config.membership_attacks)} on training vs "
                   "held-out benign events (mamori.assess.audit_membership)", t0)
    privacy_section = {
        "membership": membership,
        "membership_status": "measured" if membership is not None and privacy is None else
        "given" if membership is not None else
        "not measured: the events do not say which rows the model trained on (assess the demo with --demo, or "
        "give --privacy)",
        "epsilon_ledger": store.get("epsilon_ledger", []),
        "ledger_state": "no store given" if db is None else "recorded" if store.get("epsilon_ledger") else "empty",
        "secure_aggregation": (federation or {}).get("secure_aggregation"),
    }

    members = []
    for member in sorted(set(data["member"].tolist())):
        sel = data["member"] == member
        members.append({"member": member, "events": int(sel.sum()), "attacks": int(y[sel].sum()),
                        "trained_on": int((sel & (data["in_training"] == 1)).sum()),
                        "threshold": float(thresholds.get(member, thr))})
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
            "federation": json.loads(json.dumps(federation, default=str)) if federation else
            {"source": "not given: the settings of the run that trained the model are unknown"},
            "privacy_settings": {
                "secure_aggregation": (federation or {}).get("secure_aggregation"),
                "differential_privacy": "recorded in the privacy ledger" if store.get("epsilon_ledger") else
                "none recorded" if db is not None else "unknown (no store given)",
                "raw_events_shared": False,
            },
            "registry": {"source": store["source"], "rounds": store.get("rounds", [])},
            "versions": _versions(),
            "seed": config.seed,
            "hardware": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "config": json.loads(config.model_dump_json()),
        },
        "threat_model": THREAT_MODEL,
        "performance": performance,
        "evasion": evasion,
        "poisoning": poisoning,
        "privacy": privacy_section,
        "explainability": explanations,
        "security": security,
        "hardening": hardening,
    }
    result["findings"] = _findings(result, config)
    not_assessed = []
    if poisoning is None:
        not_assessed.append("poisoning (no results given and the experiment was switched off)")
    if membership is None:
        not_assessed.append("membership inference (" + privacy_section["membership_status"] + ")")
    if db is None:
        not_assessed.append("registry round hashes, audit-log verification, retention and the ε ledger (no --db)")
    if not security["pki"]["configured"]:
        not_assessed.append("PKI certificates and member keys (no PKI directory)")
    result["red_team"] = {
        "planning": {
            "scope": f"model {model.name} v{model.version} ({model.sha256[:12]}), {len(y):,} labelled events "
                     f"from {len(members)} member(s)",
            "objectives": ["measure detection per member and family, calibration and drift",
                           "measure evasion by unconstrained and domain-constrained attackers (ART PGD, HopSkipJump, "
                           "mimicry)", "measure poisoning by a malicious member, FedAvg against the robust mode",
                           "measure membership-inference leakage and read the ε ledger",
                           "check security controls: PKI, audit-log chain, retention"],
            "threat_model": [t["actor"] for t in THREAT_MODEL],
            "rules_of_engagement": "offline: the attacks run against a copy of the model and simulated or given "
                                   "events; no production system is touched",
            "guide": "AISI red-teaming guide structure: planning, execution, reporting",
        },
        "execution": {"started": started.isoformat(timespec="seconds"), "by": getpass.getuser(), "command": command,
                      "steps": log},
        "reporting": {"findings": len(result["findings"]),
                      "by_severity": {s: sum(f["severity"] == s for f in result["findings"])
                                      for s in ("critical", "high", "medium", "low")},
                      "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                      "not_assessed": not_assessed},
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
    out = {"evasion": evasion_png, "calibration": _png(fig), "poisoning": ""}
    given = (result.get("poisoning") or {}).get("rows") or []
    rows = [{**r, "mode": "robust" if r.get("mode") == "default" else r.get("mode")}
            for r in given if r.get("mode") in ("fedavg", "robust", "default")]
    rows = list({(r["mode"], r["attack"]): r for r in sorted(rows, key=lambda r: r.get("malicious", 0))}.values())
    if rows:
        attacks = list(dict.fromkeys(r["attack"] for r in rows))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.0))
        for ax, key, title in ((axes[0], "pr_auc", "PR-AUC of the global model"),
                               (axes[1], "backdoor_success", "backdoor success rate")):
            for k, (mode, colour) in enumerate((("fedavg", "#c62828"), ("robust", "#1565c0"))):
                vals = [next((r[key] for r in rows if r["mode"] == mode and r["attack"] == a), float("nan"))
                        for a in attacks]
                ax.bar(np.arange(len(attacks)) + 0.4 * k - 0.2, vals, width=0.4, color=colour, label=mode)
            ax.set_xticks(np.arange(len(attacks)), attacks)
            ax.set(title=title, ylim=(0, 1.02))
        axes[0].legend(fontsize=8)
        out["poisoning"] = _png(fig)
    return out


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
