"""Benchmark the consortium simulator: events per second for 5 banks x 7 days at the default scale.

Usage::

    .venv/bin/python benchmarks/simulate.py                       # generate only (the 3-minute requirement)
    .venv/bin/python benchmarks/simulate.py --write nginx         # also write the files to a temporary dir
    .venv/bin/python benchmarks/simulate.py --scale 0.1 --days 2  # smaller

Prints the figures plus the seed, versions, hardware and commit it ran with.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import polars as pl

from mamori.simulate import SimulationConfig, simulate_consortium, write_consortium


def _commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, default=5)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--write", choices=["nginx", "alb", "envoy", "envoy-json", "ecs"], default=None)
    args = parser.parse_args()

    config = SimulationConfig(banks=args.banks, days=args.days, seed=args.seed, scale=args.scale)
    print(f"mamori simulate benchmark  commit={_commit()}")
    print(
        f"python={platform.python_version()} numpy={version('numpy')} polars={pl.__version__} "
        f"pyarrow={version('pyarrow')} pydantic={version('pydantic')}"
    )
    print(f"hardware: cpus={os.cpu_count()} platform={platform.platform()} machine={platform.machine()}")
    print(f"config: banks={config.banks} days={config.days} seed={config.seed} scale={config.scale}")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at start: {load:.1f}  (other processes share the cores; see CPU time)")
    t0 = time.perf_counter()
    c0 = time.process_time()
    consortium = simulate_consortium(
        config, progress=lambda msg, done, total: print(f"  {msg} ({time.perf_counter() - t0:.1f} s)", flush=True)
    )
    generated = time.perf_counter() - t0
    cpu = time.process_time() - c0
    n = consortium.n_events
    attacks = sum(int(f["labels.is_attack"].sum()) for f in consortium.events.values())
    customers = sum(p.customers for p in consortium.profiles)
    print(f"dataset: {customers:,} customers, {n:,} events ({attacks:,} attack, {attacks / n:.2%})")
    for p in consortium.profiles:
        print(f"  {p.bank_id}: {p.customers:,} customers, {consortium.events[p.bank_id].height:,} events")
    print(
        f"GENERATE: {n:,} events in {generated:.1f} s wall = {n / generated:,.0f} events/s "
        f"(CPU time {cpu:.1f} s, all threads)"
    )
    hours, customers_ = [], []
    for frame in consortium.events.values():  # per bank, so no 6M-row copy is made
        benign = frame.lazy().filter(~pl.col("labels.is_attack")).select("@timestamp", "user.id")
        hours.append(
            benign.group_by(pl.col("@timestamp").dt.convert_time_zone("Asia/Tokyo").dt.hour().alias("h"))
            .len()
            .collect()
        )
        customers_.append(benign.filter(pl.col("user.id").is_not_null()).group_by("user.id").len().collect())
    hourly = pl.concat(hours).group_by("h").agg(pl.col("len").sum())
    per_customer = pl.concat(customers_).sort("len", descending=True)
    top = per_customer.head(per_customer.height // 10)["len"].sum() / per_customer["len"].sum()
    print(f"realism: quietest JST hour {hourly.sort('len')['h'][0]:02d}:00; top 10% of customers make {top:.1%}")
    if args.write:
        out = Path(tempfile.mkdtemp(prefix="mamori-sim-bench-"))
        try:
            t1 = time.perf_counter()
            write_consortium(consortium, out, args.write)
            written = time.perf_counter() - t1
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(
                f"WRITE ({args.write}): {written:.1f} s = {n / written:,.0f} events/s, {size / 1e9:.2f} GB; "
                f"total {generated + written:.1f} s"
            )
        finally:
            shutil.rmtree(out, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB on Linux
    print(f"peak RSS: {peak:.2f} GB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
