"""Round time of mamori on Flower's deployment engine (SuperLink + SuperNodes, TLS + node auth) on loopback.

Starts a SuperLink and ``--nodes`` SuperNodes as separate processes on 127.0.0.1, runs ``--rounds`` rounds
(train + evaluate each), and splits every round's wall time into

- *member busy*: the time at least one member's ClientApp process was alive for this round (from the
  process start - Python, Flower, torch and mamori imports - through data loading and compute to the
  reply), taken from the nodes' ``timings.jsonl``;
- *waiting on Flower*: the rest - SuperNode polling (an idle SuperNode polls every 3 s), SuperLink
  message routing, process spawning by SuperExec, and the ServerApp's own waiting.

With ``--isolation both`` it runs the same federation twice, first with Flower's default
``--isolation subprocess`` (a fresh ``flwr-clientapp`` process per message), then with mamori's warm worker
(``isolation = "process"``: a fork of one warm process per message), and prints the ratio.

Usage::

    .venv/bin/python benchmarks/deployment.py --nodes 3 --rounds 3 --isolation both
    .venv/bin/python benchmarks/deployment.py --nodes 3 --rounds 3 --isolation process --plain
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _union(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    total, end = 0.0, lo
    for a, b in sorted((max(a, lo), min(b, hi)) for a, b in intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--isolation", choices=["subprocess", "process", "both"], default="both")
    parser.add_argument("--plain", action="store_true", help="FedAvg without SecAgg+ (default: SecAgg+ on)")
    args = parser.parse_args()
    modes = ["subprocess", "process"] if args.isolation == "both" else [args.isolation]
    totals = {}
    for mode in modes:
        totals[mode] = _run(args, mode)
    if len(totals) == 2:
        print(f"flwr run total: subprocess {totals['subprocess']:.1f} s, process (warm worker) "
              f"{totals['process']:.1f} s, ratio {totals['subprocess'] / totals['process']:.2f}x, "
              f"load {os.getloadavg()[0]:.1f}")


def _run(args: argparse.Namespace, isolation: str) -> float:

    from mamori.deploy import (
        ConsortiumConfig,
        NodeConfig,
        init_ca,
        issue_node_key,
        issue_server_cert,
        register_node_key,
        run_federated,
        start_node,
        start_superlink,
        stop_process,
        sync_members,
    )
    from mamori.simulate import SimulationConfig, iter_bank_events
    from mamori.store import ModelRegistry, open_store

    root = Path(tempfile.mkdtemp(prefix="mamori-deploy-bench-"))
    rows = 0
    names = []
    for profile, events in iter_bank_events(SimulationConfig(banks=args.nodes, days=1, scale=args.scale,
                                                              seed=args.seed)):
        events.write_parquet(root / f"{profile.bank_id}.parquet")
        names.append(profile.bank_id)
        rows += events.height
    init_ca(root / "pki")
    issue_server_cert(root / "pki")
    for n in names:
        _, pub = issue_node_key(root / "keys", n)
        register_node_key(root / "pki", n, pub)
    port = _free_port()
    cfg = ConsortiumConfig.model_validate({
        "coordinator": {"port": port, "state_dir": root / "state", "pki_dir": root / "pki"},
        "federation": {"num_rounds": args.rounds, "min_train_nodes": args.nodes, "min_available_nodes": args.nodes,
                       "round_timeout_s": 600, "hidden": "64,32", "seed": args.seed,
                       "secure_aggregation": not args.plain},
    })
    procs = [start_superlink(cfg)]
    try:
        sync_members(cfg)
        for n in names:
            node = NodeConfig(name=n, superlink=f"127.0.0.1:{port}", ca_cert=root / "pki" / "ca.crt",
                              private_key=root / "keys" / f"{n}.key", data_path=root / f"{n}.parquet",
                              model_dir=root / n / "model", runtime_port=_free_port(), isolation=isolation)
            procs.append(start_node(node, root / f"{n}.log"))
        outcome = run_federated(cfg, timeout_s=3600)
        if not outcome.ok:
            raise SystemExit(f"run failed:\n{outcome.log}")
    finally:
        for p in reversed(procs):
            stop_process(p, timeout_s=5)

    store = open_store(cfg.resolved_store_url)
    records = {r.version: r for r in ModelRegistry(store).list(cfg.federation.model_name)}
    store.close()
    timings = [
        json.loads(line) for n in names for line in (root / n / "model" / "timings.jsonl").read_text().splitlines()
    ]
    print(f"mamori deployment benchmark: {args.nodes} SuperNodes, {args.rounds} rounds, TLS + node auth, loopback, "
          f"isolation {isolation}, {'FedAvg' if args.plain else 'SecAgg+'}")
    print(f"python {platform.python_version()}, flwr {version('flwr')}, torch {version('torch')}, "
          f"{platform.platform()}, cpu_count {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, seed {args.seed}, "
          f"{rows} events over {args.nodes} members, MLP hidden 64,32")
    print(f"flwr run total: {outcome.seconds:.1f} s")
    print("round  wall_s  member_busy_s  waiting_on_flower_s  share_waiting  startup_imports_s(mean)  compute_s(mean)")
    shares = []
    for rnd in range(1, args.rounds + 1):
        meta = records[rnd].metadata
        lo, hi = float(meta["round_started_at"]), float(meta["round_ended_at"])
        mine = [t for t in timings if t["round"] == rnd]
        busy = _union([(t["process_start"], t["end"]) for t in mine], lo, hi)
        startup = sum(t["imported"] - t["process_start"] for t in mine) / max(1, len(mine))
        compute = sum(t["end"] - t["handler_start"] for t in mine) / max(1, len(mine))
        wall = hi - lo
        shares.append((wall - busy) / wall)
        print(f"{rnd:5d}  {wall:6.1f}  {busy:13.1f}  {wall - busy:19.1f}  {shares[-1]:13.0%}  "
              f"{startup:23.2f}  {compute:15.2f}")
    print(f"mean share of round time waiting on Flower (polling, routing, spawning): {sum(shares) / len(shares):.0%}")
    print(f"work dir: {root}")
    return outcome.seconds


if __name__ == "__main__":
    sys.exit(main())
