"""Privacy figures of issue 5, in one run: DP utility, membership-inference leakage, SecAgg+ round time.

1. **Utility** - the demo consortium (``mamori demo --quick``'s simulation: 5 banks, 3 days, scale 0.04,
   last day held out for testing) trained federatedly (FedAvg over SecAgg+) with the attack classifier:
   without DP, and with customer-level DP-SGD at epsilon = 1, 2, 4, 8 (delta = 1/records of each bank).
   Reported: mean over banks of the test-day PR-AUC (as ``mamori demo`` reports it) and pooled PR-AUC.
2. **Leakage** - a membership-inference audit (``mamori.assess.audit_membership``: loss attack, LiRA with
   shadow models, ART black-box) of the final global model without DP and with epsilon = 8, on bank-01's
   training-period rows: members are rows of customers it trained on, non-members rows of customers held out
   of every regime (20 % of each bank's customers).
3. **SecAgg+ cost** - seconds per round of plain FedAvg and of SecAgg+ at 10 members, side by side (same
   trainers, data and seed; synthetic 100-feature data, 2,000 rows per member, the attack classifier 64-32).

Also writes the epsilon = 8 run's spends into a privacy ledger (temporary SQLite store) and prints totals.

Run:  .venv/bin/python benchmarks/privacy.py                  (everything, ~10-20 min on 2 cores)
      .venv/bin/python benchmarks/privacy.py --epsilons 8 --shadows 4 --json privacy.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

from mamori.assess import MembershipAuditConfig, audit_membership  # noqa: E402
from mamori.features import FeatureConfig, FeatureStats, Standardizer, extract_features, labels_from_events  # noqa: E402
from mamori.federation import (  # noqa: E402
    DPSGDTrainer,
    EstimatorTrainer,
    FederationConfig,
    RecordDPConfig,
    privacy_spends,
    privacy_units,
    run_federation,
)
from mamori.models import AttackClassifier  # noqa: E402
from mamori.simulate import SimulationConfig, simulate_consortium  # noqa: E402
from mamori.store import PrivacyLedger, open_store  # noqa: E402

JST = dt.timezone(dt.timedelta(hours=9))
HIDDEN = (64, 32)


def _classifier(seed: int, epochs: int = 1) -> AttackClassifier:
    return AttackClassifier(hidden_layers=HIDDEN, dropout=0.1, epochs=epochs, batch_size=256, seed=seed)


def _dp_config(epsilon: float, args: argparse.Namespace) -> RecordDPConfig:
    return RecordDPConfig(
        epsilon=epsilon,
        max_grad_norm=args.clip,
        expected_batch_units=args.batch_units,
        rows_per_unit=args.rows_per_unit,
        learning_rate=args.dp_lr,
    )


def load_consortium(args: argparse.Namespace) -> dict[str, Any]:
    """Simulate the demo consortium; per bank: train rows (with customer units), held-out customers' rows, test."""
    sim = SimulationConfig(banks=args.banks, days=args.days, seed=args.seed, scale=args.scale)
    consortium = simulate_consortium(sim)
    start = dt.datetime.combine(sim.start, dt.time(), tzinfo=JST)
    test_start = np.datetime64((start + dt.timedelta(days=args.days - 1)).astimezone(dt.UTC).replace(tzinfo=None), "us")
    rng = np.random.default_rng(args.seed)
    banks = []
    for name, events in sorted(consortium.events.items()):
        X = extract_features(events, FeatureConfig()).X.astype(np.float32)  # noqa: N806
        y, _ = labels_from_events(events)
        ts = events.get_column("@timestamp").dt.replace_time_zone(None).to_numpy()
        user = events.get_column("user.id").to_list()
        fallback = [n if n else ip for n, ip in zip(events.get_column("user.name").to_list(),
                                                     events.get_column("source.ip").to_list(), strict=True)]
        units = privacy_units(user, fallback)
        train = ts < test_start
        train_units = np.unique(units[train])
        held_out_units = rng.choice(train_units, size=int(len(train_units) * args.holdout), replace=False)
        held = train & np.isin(units, held_out_units)
        fit = train & ~held
        banks.append({
            "name": name,
            "X": X[fit], "y": y[fit], "units": units[fit],
            "X_out": X[held], "y_out": y[held], "units_out": units[held],
            "X_test": X[~train], "y_test": y[~train],
            "customers": int(len(np.unique(units[fit]))),
        })
    stats = FeatureStats.merge([FeatureStats.from_matrix(b["X"]) for b in banks])
    scaler = Standardizer().fit_stats(stats)
    for b in banks:
        for key in ("X", "X_out", "X_test"):
            b[key] = scaler.transform(b[key]).astype(np.float32)
    return {"banks": banks, "events": int(sum(e.height for e in consortium.events.values()))}


def pr_aucs(banks: list[dict[str, Any]], score: Any) -> dict[str, float]:
    """Mean over banks of the test-day PR-AUC, and the pooled PR-AUC."""
    per_bank = [float(average_precision_score(b["y_test"], score(b["X_test"]))) for b in banks if b["y_test"].any()]
    pooled_y = np.concatenate([b["y_test"] for b in banks])
    pooled_s = np.concatenate([score(b["X_test"]) for b in banks])
    pooled = float(average_precision_score(pooled_y, pooled_s))
    return {"mean_pr_auc": float(np.mean(per_bank)), "pooled_pr_auc": pooled}


def train_federated(
    banks: list[dict[str, Any]], epsilon: float | None, args: argparse.Namespace, secure: bool = True
) -> tuple[AttackClassifier, Any, list[Any], FederationConfig, float]:
    """Federated training over SecAgg+; with ``epsilon`` each bank trains with customer-level DP-SGD."""
    n_features = banks[0]["X"].shape[1]
    trainers: list[Any] = []
    for b in banks:
        model = _classifier(args.seed).init_weights(n_features)
        if epsilon is None:
            trainers.append(EstimatorTrainer(model, b["X"], b["y"], b["X_test"], b["y_test"]))
        else:
            trainers.append(DPSGDTrainer(model, b["X"], b["y"], b["units"], b["X_test"], b["y_test"],
                                         _dp_config(epsilon, args), num_rounds=args.rounds,
                                         local_epochs=args.dp_epochs, name=b["name"]))
    config = FederationConfig(
        num_rounds=args.rounds, min_train_nodes=len(banks), min_available_nodes=len(banks),
        min_evaluate_nodes=len(banks), seed=args.seed, secure_aggregation=secure, evaluate_initial=False,
    )
    started = time.perf_counter()
    result = run_federation(trainers, _classifier(args.seed).init_weights(n_features).get_weights(), config,
                            member_names=[b["name"] for b in banks])
    seconds = time.perf_counter() - started
    model = _classifier(args.seed).init_weights(n_features).set_weights(result.arrays)
    spends = [s for r in result.history for s in privacy_spends(r, config)]
    return model, result, spends, config, seconds  # type: ignore[return-value]


def audit(model: AttackClassifier, bank: dict[str, Any], epsilon: float | None, args: argparse.Namespace) -> Any:
    """Membership inference on one bank's training-period rows: members vs held-out customers' rows."""
    rng = np.random.default_rng(args.seed + 7)
    # same number of attack and benign rows on both sides, so that no attack can win on label composition alone
    pos_in, pos_out = np.flatnonzero(bank["y"] == 1), np.flatnonzero(bank["y_out"] == 1)
    neg_in, neg_out = np.flatnonzero(bank["y"] == 0), np.flatnonzero(bank["y_out"] == 0)
    n = min(args.audit_rows, len(bank["X"]), len(bank["X_out"]))
    k_pos = min(len(pos_in), len(pos_out), n // 10)
    k_neg = min(n - k_pos, len(neg_in), len(neg_out))
    members = np.concatenate([rng.choice(pos_in, k_pos, replace=False), rng.choice(neg_in, k_neg, replace=False)])
    others = np.concatenate([rng.choice(pos_out, k_pos, replace=False), rng.choice(neg_out, k_neg, replace=False)])
    n = len(members)
    X = np.concatenate([bank["X"][members], bank["X_out"][others]])  # noqa: N806
    y = np.concatenate([bank["y"][members], bank["y_out"][others]])
    is_member = np.concatenate([np.ones(n, dtype=bool), np.zeros(n, dtype=bool)])
    units = np.concatenate([bank["units"][members], bank["units_out"][others]])
    unit_of = {row.tobytes(): int(u) for row, u in zip(X, units, strict=True)}  # shadows group rows like the target

    def shadow(Xs: np.ndarray, ys: np.ndarray, seed: int) -> Any:  # noqa: N803
        """Train like the target: same model, same passes over the data, same DP-SGD when the target had it."""
        model = _classifier(seed, epochs=args.rounds).init_weights(Xs.shape[1])
        if epsilon is None:
            return model.fit(Xs, ys).decision_function
        shadow_units = np.array([unit_of.get(row.tobytes(), -1) for row in Xs])
        trainer = DPSGDTrainer(model, Xs, ys, shadow_units, Xs[:1], ys[:1], _dp_config(epsilon, args),
                               num_rounds=args.rounds, local_epochs=args.dp_epochs, name="shadow")
        weights = model.get_weights()
        for r in range(args.rounds):
            weights, _, _ = trainer.fit(weights, {"seed": seed * 100 + r})
        return model.set_weights(weights).decision_function

    config = MembershipAuditConfig(attacks=tuple(args.attacks), n_shadows=args.shadows, seed=args.seed)
    return audit_membership(model.decision_function, X, y, is_member, shadow_trainer=shadow, config=config,
                            groups=units)


def secagg_timing(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per round, plain FedAvg vs SecAgg+, 10 members, same trainers and data."""
    rng = np.random.default_rng(args.seed)
    n_features, n_members = 100, args.secagg_members
    families = [rng.normal(0, 1, n_features) * 0.4 for _ in range(4)]

    def member_data(k: int) -> tuple[np.ndarray, ...]:
        shift = rng.normal(0, 0.3, n_features)
        benign = rng.normal(0, 1, (1800, n_features)) + shift
        attack = rng.normal(0, 1, (200, n_features)) + families[k % 4] + shift
        X = np.vstack([benign, attack]).astype(np.float32)  # noqa: N806
        y = np.concatenate([np.zeros(1800), np.ones(200)]).astype(np.int64)
        return X, y, X[::4], y[::4]

    data = [member_data(k) for k in range(n_members)]

    def run(mode: str, rounds: int) -> Any:
        trainers = [EstimatorTrainer(_classifier(args.seed).init_weights(n_features), *d) for d in data]
        config = FederationConfig(num_rounds=rounds, min_train_nodes=n_members, min_available_nodes=n_members,
                                  seed=args.seed, evaluate_initial=False, secure_aggregation=mode == "secagg+")
        return run_federation(trainers, _classifier(args.seed).init_weights(n_features).get_weights(), config)

    for mode in ("fedavg", "secagg+"):  # warm-up (imports, torch kernels, key generation code paths)
        run(mode, 1)
    times: dict[str, list[float]] = {"fedavg": [], "secagg+": []}
    traffic: dict[str, Any] = {}
    for _ in range(args.secagg_repeats):  # alternate the modes so that load from other work hits both alike
        for mode in ("fedavg", "secagg+"):
            result = run(mode, args.secagg_rounds)
            times[mode] += [r.seconds for r in result.history if r.server_round > 0]
            traffic[mode] = result.history[-1]
    out: dict[str, Any] = {}
    for mode, values in times.items():
        out[mode] = {
            "seconds_per_round": statistics.mean(values),
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "rounds_measured": len(values),
            "bytes_up_per_round": traffic[mode].bytes_up,
            "bytes_down_per_round": traffic[mode].bytes_down,
        }
    out["ratio"] = out["secagg+"]["seconds_per_round"] / out["fedavg"]["seconds_per_round"]
    out["members"] = n_members
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, default=5)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epsilons", type=float, nargs="*", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--holdout", type=float, default=0.2, help="share of each bank's customers held out")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--batch-units", type=int, default=256)
    parser.add_argument("--rows-per-unit", type=int, default=16)
    parser.add_argument("--dp-lr", type=float, default=0.02)
    parser.add_argument("--dp-epochs", type=int, default=3, help="DP-SGD epochs (of customers) per round")
    parser.add_argument("--audit-rows", type=int, default=5000)
    parser.add_argument("--shadows", type=int, default=8)
    parser.add_argument("--attacks", nargs="*", default=["loss", "lira", "art"])
    parser.add_argument("--secagg-members", type=int, default=10)
    parser.add_argument("--secagg-rounds", type=int, default=3)
    parser.add_argument("--secagg-repeats", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["utility", "leakage", "secagg"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    versions = {p: version(p) for p in ("flwr", "torch", "opacus", "dp-accounting", "adversarial-robustness-toolbox",
                                         "numpy", "scikit-learn")}
    out: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "seed": args.seed, "commit": commit, "versions": versions,
        "hardware": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": args.threads},
    }
    print(f"# mamori privacy benchmark - commit {commit}, seed {args.seed}, {os.cpu_count()} cpus, "
          f"{platform.platform()}, torch threads {args.threads}")
    print("# versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    if "secagg" not in args.skip:
        t = secagg_timing(args)
        out["secagg"] = t
        print(f"\n## SecAgg+ vs FedAvg, {t['members']} members, {args.secagg_repeats} x {args.secagg_rounds} "
              "rounds each (alternating), attack classifier "
              f"100-{HIDDEN[0]}-{HIDDEN[1]}-1")
        for mode in ("fedavg", "secagg+"):
            r = t[mode]
            print(f"{mode:8s} {r['seconds_per_round']:.3f} s/round mean, median {r['median']:.3f} (min {r['min']:.3f}, "
                  f"max {r['max']:.3f}, {r['rounds_measured']} rounds); up {r['bytes_up_per_round']:,.0f} B, "
                  f"down {r['bytes_down_per_round']:,.0f} B per round")
        print(f"ratio SecAgg+/FedAvg: {t['ratio']:.2f}x  (target <= 3x)")

    if "utility" in args.skip and "leakage" in args.skip:
        _finish(out, args, started)
        return
    data = load_consortium(args)
    banks = data["banks"]
    print(f"\n## demo consortium: {len(banks)} banks, {args.days} days, scale {args.scale}, {data['events']:,} events; "
          f"train rows {sum(len(b['y']) for b in banks):,} ({sum(b['customers'] for b in banks):,} customers/units), "
          f"held-out customers' rows {sum(len(b['y_out']) for b in banks):,}, test rows "
          f"{sum(len(b['y_test']) for b in banks):,}; {args.rounds} rounds FedAvg over SecAgg+")
    out["data"] = {"events": data["events"], "banks": [
        {"name": b["name"], "train_rows": len(b["y"]), "units": b["customers"], "held_out_rows": len(b["y_out"]),
         "test_rows": len(b["y_test"]), "delta": 1.0 / len(b["y"])} for b in banks]}
    regimes: dict[str, Any] = {}
    models: dict[str, AttackClassifier] = {}
    for epsilon in [None, *sorted(args.epsilons)]:
        label = "no DP" if epsilon is None else f"eps={epsilon:g}"
        model, result, spends, config, seconds = train_federated(banks, epsilon, args)
        models[label] = model
        metrics = pr_aucs(banks, model.decision_function)
        final = [s for s in spends if s.server_round == args.rounds]
        regimes[label] = {**metrics, "seconds": seconds,
                          "epsilon_spent": max((s.epsilon for s in final), default=0.0),
                          "noise_multiplier": [s.noise_multiplier for s in final]}
        if epsilon == max(args.epsilons, default=None):
            with tempfile.TemporaryDirectory() as tmp:
                store = open_store(str(Path(tmp) / "ledger.db"))
                ledger = PrivacyLedger(store)
                for s in spends:
                    ledger.record(s.member, s.server_round, s.epsilon, s.delta, s.mechanism, run_id=label,
                                  unit=s.unit, noise_multiplier=s.noise_multiplier, steps=s.steps)
                regimes[label]["ledger"] = [
                    {"member": t.member, "epsilon": t.epsilon, "delta": t.delta, "rounds": t.rounds}
                    for t in ledger.totals()
                ]
                store.close()
        extra = "" if epsilon is None else (
            f"; epsilon spent {regimes[label]['epsilon_spent']:.3f}, noise multipliers "
            + ", ".join(f"{v:.2f}" for v in regimes[label]["noise_multiplier"]))
        print(f"{label:8s} mean PR-AUC {metrics['mean_pr_auc']:.4f}, pooled {metrics['pooled_pr_auc']:.4f} "
              f"({seconds:.0f} s){extra}", flush=True)
    base = regimes["no DP"]["mean_pr_auc"]
    for r in regimes.values():
        r["loss_points"] = 100 * (base - r["mean_pr_auc"])
    out["utility"] = regimes
    print("PR-AUC loss vs no DP (points, mean over banks): " + ", ".join(
        f"{k} {v['loss_points']:+.2f}" for k, v in regimes.items() if k != "no DP") + "  (target at eps=8: <= 3)")
    top = f"eps={max(args.epsilons):g}" if args.epsilons else None
    if top and "ledger" in regimes[top]:
        print("privacy ledger totals (" + top + "): " + ", ".join(
            f"{e['member']} eps {e['epsilon']:.3f} delta {e['delta']:.2g} ({e['rounds']} rounds)"
            for e in regimes[top]["ledger"]))

    if "leakage" not in args.skip:
        out["leakage"] = {}
        print(f"\n## membership inference on {banks[0]['name']}: {min(args.audit_rows, len(banks[0]['y_out']))} "
              f"members vs as many held-out customers' rows; attacks {args.attacks}, {args.shadows} shadows")
        for label in ["no DP", *([top] if top else [])]:
            epsilon = None if label == "no DP" else max(args.epsilons)
            report = audit(models[label], banks[0], epsilon, args)
            out["leakage"][label] = report.to_dict()
            for name, r in report.attacks.items():
                print(f"{label:8s} {name:5s} AUC {r.auc:.3f}, TPR@0.1%FPR {100 * r.tpr_at_fpr[0.001]:.2f}%, "
                      f"TPR@1%FPR {100 * r.tpr_at_fpr[0.01]:.2f}%, advantage {r.advantage:.3f} "
                      f"({r.n_members}+{r.n_nonmembers})", flush=True)
            worst = report.worst(0.001)
            print(f"{label:8s} worst TPR@0.1%FPR {100 * worst.tpr_at_fpr[0.001]:.2f}% ({worst.attack}); "
                  f"chance 0.10%, target with DP <= 0.20%")
    _finish(out, args, started)


def _finish(out: dict[str, Any], args: argparse.Namespace, started: float) -> None:
    out["seconds"] = time.perf_counter() - started
    print(f"\ntotal {out['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
