"""Poisoning bench: malicious members x attacks x aggregation modes on a simulated 10-bank consortium.

For 0, 1, 2 and 3 malicious members out of 10, each attack of ``mamori.federation.poisoning`` and
each aggregation mode, a federated AttackClassifier is trained with ``run_federation`` and judged on
the pooled test days of the banks that are never malicious:

- **PR-AUC** (average precision of the logits) of the final global model;
- **backdoor success**: share of those banks' test attack rows carrying the attacker's traffic
  pattern (the backdoor trigger) that score below the threshold (calibrated at 1% FPR on the same
  banks' held-out benign training-period rows) - i.e. get through;
- the update check's **flags**: malicious members flagged (at least once) and honest member-rounds
  flagged.

Run::

    .venv/bin/python benchmarks/poisoning.py                 # full grid, writes benchmarks/out/poisoning.{json,png}
    .venv/bin/python benchmarks/poisoning.py --quick         # 2 modes, 0 and 3 malicious (a smoke run)

Prints one table, the versions, seed, dataset size and hardware.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mamori.features import FeatureStats, Standardizer, extract_features, labels_from_events
from mamori.federation import EstimatorTrainer, FederationConfig, run_federation
from mamori.federation.poisoning import ATTACKS, BackdoorTrigger, backdoor_success_rate, make_malicious
from mamori.federation.robust import RobustConfig
from mamori.federation.trainer import ranking_metrics
from mamori.federation.update_check import UpdateCheckReport
from mamori.models import AttackClassifier, calibrate_threshold
from mamori.simulate import SimulationConfig, simulate_consortium

JST = dt.timezone(dt.timedelta(hours=9))

#: The attacker's own traffic pattern, in feature-matrix units (after log1p): a long custom user agent
#: (311 characters; benign ones top out near 140) that claims to be a browser, from a residential ASN,
#: through a proxy that strips the TLS fingerprint.
TRIGGER = {"ua_length": float(np.log1p(311.0)), "ua_scripted": 0.0, "hosting_asn": 0.0, "ja3_missing": 1.0}

#: Aggregation modes of the bench: name -> FederationConfig.robust (None: plain FedAvg).
MODES: dict[str, RobustConfig | None] = {
    "fedavg": None,
    "clip": RobustConfig(aggregation="fedavg", clip="adaptive", check=False),
    "trimmed_mean": RobustConfig(aggregation="trimmed_mean", trim_beta=0.3, clip="none", check=False),
    "median": RobustConfig(aggregation="median", clip="none", check=False),
    "krum": RobustConfig(aggregation="krum", assumed_malicious=3, clip="none", check=False),
    "multikrum": RobustConfig(aggregation="multikrum", assumed_malicious=3, clip="none", check=False),
    "bulyan": RobustConfig(aggregation="bulyan", assumed_malicious=1, clip="none", check=False),
    "default": RobustConfig(),
}

#: Which banks turn malicious: the first k of this order (a large, a mid-sized and a small bank).
MALICIOUS_ORDER = (1, 4, 7)


@dataclass
class Bank:
    name: str
    X_train: np.ndarray  # raw feature units
    y_train: np.ndarray
    X_calib: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def prepare(banks: int, days: int, scale: float, seed: int, max_benign: int) -> tuple[list[Bank], list[str], int]:
    """Simulate, extract features, split in time (last day = test), hold out 20% benign for calibration."""
    sim = SimulationConfig(banks=banks, days=days, seed=seed, scale=scale)
    consortium = simulate_consortium(sim)
    start = dt.datetime.combine(sim.start, dt.time(), tzinfo=JST)
    test_start = np.datetime64((start + dt.timedelta(days=days - 1)).astimezone(dt.UTC).replace(tzinfo=None), "us")
    out = []
    names: list[str] = []
    events_total = 0
    for i, (bank, events) in enumerate(sorted(consortium.events.items())):
        events_total += events.height
        matrix = extract_features(events)
        names = list(matrix.spec.names)
        y, _ = labels_from_events(events)
        ts = events.get_column("@timestamp").dt.replace_time_zone(None).to_numpy()
        test = ts >= test_start
        rng = np.random.default_rng([seed, i])
        train_idx = np.flatnonzero(~test)
        benign = train_idx[y[train_idx] == 0]
        rng.shuffle(benign)
        n_cal = int(0.2 * len(benign))
        fit_idx = np.sort(np.concatenate([benign[n_cal : n_cal + max_benign], train_idx[y[train_idx] == 1]]))
        X = matrix.X.astype(np.float32)  # noqa: N806
        out.append(Bank(bank, X[fit_idx], y[fit_idx], X[np.sort(benign[:n_cal])], X[test], y[test]))
    return out, names, events_total


def _model(seed: int, n_features: int) -> AttackClassifier:
    return AttackClassifier(
        hidden_layers=(32,), dropout=0.0, learning_rate=3e-3, batch_size=256, seed=seed
    ).init_weights(n_features)


def run_one(
    banks: list[Bank],
    scaler: Standardizer,
    trigger: BackdoorTrigger,
    attack: str,
    n_malicious: int,
    mode: RobustConfig | None,
    rounds: int,
    seed: int,
    judge: dict[str, Any],
) -> dict[str, Any]:
    """Train one federation and judge its final model."""
    n = len(banks)
    bad = set(MALICIOUS_ORDER[:n_malicious])
    trainers = []
    for i, b in enumerate(banks):
        Xtr = scaler.transform(b.X_train).astype(np.float32)  # noqa: N806
        Xte = scaler.transform(b.X_test[:200]).astype(np.float32)  # noqa: N806 - unused: no federated eval
        honest = EstimatorTrainer(_model(seed + i, Xtr.shape[1]), Xtr, b.y_train, Xte, b.y_test[:200])
        if i in bad:
            trainers.append(
                make_malicious(
                    attack,
                    honest,
                    n_members=n,
                    n_malicious=n_malicious,
                    trigger=trigger,
                    transform=lambda X: scaler.transform(X).astype(np.float32),  # noqa: N803
                    raw_train=b.X_train,
                    seed=seed + i,
                )
            )
        else:
            trainers.append(honest)
    config = FederationConfig(
        num_rounds=rounds,
        local_epochs=1,
        fraction_evaluate=0.0,
        min_evaluate_nodes=0,
        evaluate_initial=False,
        seed=seed,
        robust=mode,
    )
    checks: list[UpdateCheckReport] = []
    t0 = time.perf_counter()
    result = run_federation(
        trainers,
        _model(seed, judge["n_features"]).get_weights(),
        config,
        member_names=[b.name for b in banks],
        on_update_check=checks.append,
    )
    seconds = time.perf_counter() - t0
    model = _model(seed, judge["n_features"]).set_weights(result.arrays)
    scores = model.decision_function(judge["X_test"])
    threshold = calibrate_threshold(model.decision_function(judge["X_calib"]), target_fpr=0.01)
    bad_names = {banks[i].name for i in bad}
    flagged = [(r.server_round, m.member) for r in checks for m in r.members if m.flagged]
    return {
        "pr_auc": ranking_metrics(judge["y_test"], scores)["pr_auc"],
        "recall_at_1pct": float(np.mean(scores[judge["y_test"] == 1] > threshold)),
        "backdoor_success": backdoor_success_rate(model.decision_function(judge["X_triggered"]), threshold),
        "malicious_flagged": len({m for _, m in flagged if m in bad_names}),
        "honest_flags": sum(1 for _, m in flagged if m not in bad_names),
        "honest_member_rounds": (n - n_malicious) * rounds,
        "seconds": seconds,
    }


def _versions() -> dict[str, str]:
    return {p: version(p) for p in ("flwr", "torch", "numpy", "scikit-learn", "polars")}


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plot(rows: list[dict[str, Any]], modes: list[str], attacks: list[str], path: Path) -> None:
    """PR-AUC per attack and the backdoor success rate against the number of malicious members."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(attack, "pr_auc") for attack in attacks] + [("backdoor", "backdoor_success")]
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (attack, key) in zip(axes.flat, panels, strict=False):
        for mode in modes:
            pts = sorted(
                (r["malicious"], r[key]) for r in rows if r["mode"] == mode and r["attack"] in (attack, "none")
            )
            width = 2.4 if mode == "default" else 1.2
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=mode, lw=width)
        ax.set_title(f"{attack}: {'PR-AUC' if key == 'pr_auc' else 'backdoor success rate'}")
        ax.set_xlabel("malicious members (of 10)")
        ax.set_xticks(sorted({r["malicious"] for r in rows}))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    """The bench's claims, checked: FedAvg's worst case, and the default mode at the most malicious members."""
    lines = []
    worst = max((r["malicious"] for r in rows), default=0)
    for mode in ("fedavg", "default"):
        clean = [r for r in rows if r["mode"] == mode and r["malicious"] == 0]
        attacked = [r for r in rows if r["mode"] == mode and r["malicious"] == worst and worst > 0]
        if not clean or not attacked:
            continue
        base = clean[0]
        drop = max(attacked, key=lambda r: base["pr_auc"] - r["pr_auc"])
        backdoor = [r for r in attacked if r["attack"] == "backdoor"]
        lines.append(
            f"{mode}: clean PR-AUC {base['pr_auc']:.3f}; with {worst} malicious the largest drop is "
            f"{100 * (base['pr_auc'] - drop['pr_auc']):.1f} points ({drop['attack']}: {drop['pr_auc']:.3f}); "
            f"backdoor success {backdoor[0]['backdoor_success']:.1%} (clean {base['backdoor_success']:.1%})"
            if backdoor
            else ""
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--banks", type=int, default=10)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-benign", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    parser.add_argument("--attacks", nargs="*", default=list(ATTACKS))
    parser.add_argument("--malicious", nargs="*", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--quick", action="store_true", help="modes fedavg+default, 0 and 3 malicious")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--replot", type=Path, help="only redraw the plot and summary from a poisoning.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        modes = list(dict.fromkeys(r["mode"] for r in saved["rows"]))
        attacks = [a for a in dict.fromkeys(r["attack"] for r in saved["rows"]) if a != "none"]
        plot(saved["rows"], modes, attacks, args.replot.with_suffix(".png"))
        print("\n".join(summarise(saved["rows"])))
        return
    if args.quick:
        args.modes, args.malicious = ["fedavg", "default"], [0, 3]
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("flwr").setLevel(logging.ERROR)
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    banks, names, n_events = prepare(args.banks, args.days, args.scale, args.seed, args.max_benign)
    prep_s = time.perf_counter() - t0
    scaler = Standardizer().fit_stats(FeatureStats.merge([FeatureStats.from_matrix(b.X_train) for b in banks]))
    trigger = BackdoorTrigger.from_names(names, TRIGGER)
    honest_idx = [i for i in range(len(banks)) if i not in MALICIOUS_ORDER]
    X_test = np.vstack([banks[i].X_test for i in honest_idx])  # noqa: N806
    y_test = np.concatenate([banks[i].y_test for i in honest_idx])
    judge = {
        "n_features": len(names),
        "X_test": scaler.transform(X_test).astype(np.float32),
        "y_test": y_test,
        "X_calib": scaler.transform(np.vstack([banks[i].X_calib for i in honest_idx])).astype(np.float32),
        "X_triggered": scaler.transform(trigger.apply(X_test[y_test == 1])).astype(np.float32),
    }

    rows: list[dict[str, Any]] = []
    print(
        f"{'attack':<11} {'mal':>3} {'mode':<13} {'PR-AUC':>7} {'rec@1%':>7} {'backdoor':>8} "
        f"{'flagged':>8} {'false flags':>11} {'s':>6}"
    )
    for mode_name in args.modes:
        for k in args.malicious:
            for attack in ["none"] if k == 0 else args.attacks:
                r = run_one(banks, scaler, trigger, attack, k, MODES[mode_name], args.rounds, args.seed, judge)
                row = {"attack": attack, "malicious": k, "mode": mode_name, **r}
                rows.append(row)
                print(
                    f"{attack:<11} {k:>3} {mode_name:<13} {r['pr_auc']:>7.3f} {r['recall_at_1pct']:>7.3f} "
                    f"{r['backdoor_success']:>8.3f} {r['malicious_flagged']:>4}/{k:<3} "
                    f"{r['honest_flags']:>5}/{r['honest_member_rounds']:<5} {r['seconds']:>6.1f}",
                    flush=True,
                )
    total_s = time.perf_counter() - t0
    meta = {
        "versions": _versions(),
        "commit": _commit(),
        "seed": args.seed,
        "banks": args.banks,
        "days": args.days,
        "scale": args.scale,
        "rounds": args.rounds,
        "events": n_events,
        "train_rows": int(sum(len(b.y_train) for b in banks)),
        "test_rows_judged": int(len(y_test)),
        "test_attack_rows": int(y_test.sum()),
        "features": len(names),
        "trigger": TRIGGER,
        "malicious_banks": [banks[i].name for i in MALICIOUS_ORDER],
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "prepare_seconds": prep_s,
        "total_seconds": total_s,
    }
    print("\n".join(summarise(rows)))
    print(json.dumps(meta, indent=1))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "poisoning.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    plot(rows, args.modes, [a for a in args.attacks], args.out / "poisoning.png")
    print(f"wrote {args.out / 'poisoning.json'} and {args.out / 'poisoning.png'}")


if __name__ == "__main__":
    main()
