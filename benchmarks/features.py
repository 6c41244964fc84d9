"""Benchmark of mamori.features.extract_features: seconds per million events, on simulated bank traffic.

Usage: .venv/bin/python benchmarks/features.py [--scale 0.3] [--days 7] [--seed 1] [--repeat 2]
Prints the figures plus versions, seed, dataset size and hardware.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import numpy as np
import polars as pl

from mamori.features import FeatureConfig, extract_features
from mamori.simulate import SimulationConfig, simulate_consortium


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    sim = SimulationConfig(banks=1, days=args.days, scale=args.scale, seed=args.seed)
    started = time.perf_counter()
    events = simulate_consortium(sim).events["bank-01"]
    simulate_s = time.perf_counter() - started
    config = FeatureConfig()
    extract_features(events.head(1000), config)  # warm-up (imports, regex compilation)

    walls, cpus = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fm = extract_features(events, config)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    n = events.height
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(
        f"events: {n:,} (1 bank, {args.days} days, scale {args.scale}, seed {args.seed}; "
        f"simulated in {simulate_s:.1f} s)"
    )
    print(f"features: {fm.spec.n_features} columns; matrix {fm.X.nbytes / 1e9:.2f} GB float32")
    print(f"extract_features wall: best {min(walls):.2f} s, runs {[round(w, 2) for w in walls]}")
    print(f"extract_features CPU (all threads): best {min(cpus):.2f} s")
    print(f"=> {min(walls) / n * 1e6:.1f} s wall per million events; {min(cpus) / n * 1e6:.1f} s CPU per million")
    print(f"per-row finite: {bool(np.isfinite(fm.X).all())}")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(
        f"versions: polars {pl.__version__}, numpy {np.__version__}, python {platform.python_version()}; "
        f"commit {commit}"
    )
    print(f"hardware: {os.cpu_count()} CPUs, {platform.platform()}, {platform.processor() or 'unknown'}")
    print(f"load average during run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other jobs share the machine)")


if __name__ == "__main__":
    main()
