"""Sanity check of mamori.features + mamori.models on a small simulated consortium (centralised upper bound).

Each bank's traffic is split in time (first half train, second half test); normalisation uses consortium-wide
statistics merged from the members' training halves; one centralised AttackClassifier and one
AutoencoderDetector (trained on training rows labelled benign) are evaluated per attack family.

Usage: .venv/bin/python benchmarks/features_simulated.py [--banks 3] [--days 2] [--scale 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import polars as pl
import torch

from mamori.features import FeatureStats, Standardizer, extract_features, labels_from_events
from mamori.models import (
    AttackClassifier,
    AutoencoderDetector,
    calibrate_threshold,
    evaluate_by_family,
    evaluate_scores,
)
from mamori.simulate import SimulationConfig, simulate_consortium


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--banks", type=int, default=3)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    consortium = simulate_consortium(
        SimulationConfig(banks=args.banks, days=args.days, scale=args.scale, seed=args.seed)
    )
    train_parts, calib_parts, test_parts = [], [], []
    n_events, extract_s = 0, 0.0
    for bank, events in consortium.events.items():
        t0 = time.perf_counter()
        fm = extract_features(events)
        extract_s += time.perf_counter() - t0
        n_events += events.height
        y, families = labels_from_events(events)
        ts = events.get_column("@timestamp")
        # Time split: first 40% train, next 10% calibration (its benign rows set the threshold), last 50% test.
        span = ts.max() - ts.min()
        train = (ts < ts.min() + span * 0.4).to_numpy()
        test = (ts >= ts.min() + span * 0.5).to_numpy()
        calib = ~train & ~test
        train_parts.append((fm.X[train], y[train], families[train]))
        calib_parts.append((fm.X[calib], y[calib]))
        test_parts.append((fm.X[test], y[test], families[test], bank))
        print(f"{bank}: {events.height:,} events; attacks train {int(y[train].sum()):,} / test {int(y[test].sum()):,}")

    scaler = Standardizer().fit_stats(FeatureStats.merge(FeatureStats.from_matrix(p[0]) for p in train_parts))
    X_train = scaler.transform(np.vstack([p[0] for p in train_parts]))
    y_train = np.concatenate([p[1] for p in train_parts])
    f_train = np.concatenate([p[2] for p in train_parts])
    X_calib = scaler.transform(np.vstack([p[0] for p in calib_parts]))
    y_calib = np.concatenate([p[1] for p in calib_parts])
    X_test = scaler.transform(np.vstack([p[0] for p in test_parts]))
    y_test = np.concatenate([p[1] for p in test_parts])
    f_test = np.concatenate([p[2] for p in test_parts])

    t0 = time.perf_counter()
    clf = AttackClassifier(epochs=args.epochs, seed=0).fit(X_train, y_train)
    train_s = time.perf_counter() - t0
    ae = AutoencoderDetector(epochs=args.epochs, seed=0).fit(X_train, y_train)
    detectors = {"classifier": clf, "autoencoder": ae}
    results = {}
    for name, model in detectors.items():
        threshold = calibrate_threshold(model.decision_function(X_calib[y_calib == 0]), 0.005)
        scores = model.decision_function(X_test)
        results[name] = (
            evaluate_scores(y_test, scores, threshold),
            evaluate_by_family(y_test, f_test, scores, threshold),
        )

    print(f"\nextract_features: {n_events:,} events in {extract_s:.2f} s; classifier training {train_s:.1f} s")
    for name, (overall, _) in results.items():
        print(
            f"{name:12s} overall: PR-AUC {_fmt(overall['pr_auc'])}, "
            f"recall@0.5%FPR-threshold {_fmt(overall['recall'])}, test FPR {_fmt(overall['fpr'])}, "
            f"TPR@1%FPR {_fmt(overall['tpr_at_1pct_fpr'])}"
        )
    header = f"{'family':30s} {'train':>6s} {'test':>6s} | {'clf PR-AUC':>10s} {'recall':>6s} |"
    print(f"\n{header} {'AE PR-AUC':>9s} {'recall':>6s}")
    fams = sorted(set(f_test[y_test == 1]) | set(f_train[y_train == 1]))
    for fam in fams:
        c = results["classifier"][1].get(fam)
        a = results["autoencoder"][1].get(fam)
        print(
            f"{fam:30s} {int((f_train == fam).sum()):6d} {int((f_test == fam).sum()):6d} | "
            f"{_fmt(c and c['pr_auc']):>10s} {_fmt(c and c['recall']):>6s} | {_fmt(a and a['pr_auc']):>9s} "
            f"{_fmt(a and a['recall']):>6s}"
        )
    print(
        f"\nseed {args.seed}, banks {args.banks}, days {args.days}, scale {args.scale}; polars {pl.__version__}, "
        f"torch {torch.__version__}, numpy {np.__version__}; {os.cpu_count()} CPUs, {platform.platform()}"
    )


if __name__ == "__main__":
    main()
