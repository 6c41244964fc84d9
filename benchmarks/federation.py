"""Round time and bytes per round of mamori's Flower federation for 5, 10 and 50 simulated banks.

Each bank holds synthetic, non-IID data (its own benign shift and a subset of attack families) and
trains a PyTorch MLP of realistic size (100 inputs, hidden 64 and 32, one logit; 8,577 parameters)
with FedAvg through ``mamori.federation.run_federation`` (Flower ServerApp + ClientApps, in-process).

Reported per federation size: mean/min/max seconds per round (train + aggregate + federated
evaluation), the part of it spent in the banks' own training/evaluation code, the rest (Flower,
serialization, aggregation = coordination overhead), bytes sent down and up per round (serialized
Flower objects actually exchanged) and per bank, and the pooled-test PR-AUC before and after.

Run:  .venv/bin/python benchmarks/federation.py            (5, 10, 50 banks, 3 rounds)
      .venv/bin/python benchmarks/federation.py --banks 5 10 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

import flwr  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

from mamori.federation import EstimatorTrainer, FederationConfig, run_federation  # noqa: E402

N_FEATURES = 100
HIDDEN = (64, 32)
N_FAMILIES = 8


class TorchMLP:
    """A small PyTorch MLP with the estimator contract of ``mamori.models`` (weights <-> NumPy)."""

    def __init__(self, n_features: int = N_FEATURES, lr: float = 1e-2, batch_size: int = 128, seed: int = 0) -> None:
        self.n_features = n_features
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed

    def init_weights(self, n_features: int) -> TorchMLP:
        torch.manual_seed(self.seed)
        self.module_ = torch.nn.Sequential(
            torch.nn.Linear(n_features, HIDDEN[0]),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN[0], HIDDEN[1]),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN[1], 1),
        )
        return self

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().cpu().numpy().copy() for p in self.module_.parameters()]

    def set_weights(self, weights: list[np.ndarray]) -> TorchMLP:
        with torch.no_grad():
            for p, w in zip(self.module_.parameters(), weights, strict=True):
                p.copy_(torch.from_numpy(np.asarray(w)))
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        with torch.no_grad():
            return self.module_(torch.from_numpy(np.asarray(X, dtype=np.float32))).squeeze(1).numpy().astype(np.float64)

    def fit_local(
        self,
        X: np.ndarray,  # noqa: N803
        y: np.ndarray,
        epochs: int,
        proximal_mu: float = 0.0,
        reference_weights: list[np.ndarray] | None = None,
    ) -> TorchMLP:
        Xt = torch.from_numpy(np.asarray(X, dtype=np.float32))  # noqa: N806
        yt = torch.from_numpy(np.asarray(y, dtype=np.float32))
        pos = float(yt.sum())
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(max(1.0, (len(yt) - pos) / max(pos, 1.0))))
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.lr)
        refs = [torch.from_numpy(r) for r in reference_weights] if reference_weights is not None else None
        generator = torch.Generator().manual_seed(self.seed)
        self.module_.train()
        for _ in range(epochs):
            order = torch.randperm(len(Xt), generator=generator)
            for start in range(0, len(Xt), self.batch_size):
                idx = order[start : start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(self.module_(Xt[idx]).squeeze(1), yt[idx])
                if proximal_mu > 0 and refs is not None:
                    loss = loss + proximal_mu / 2 * sum(
                        ((p - r) ** 2).sum() for p, r in zip(self.module_.parameters(), refs, strict=True)
                    )
                loss.backward()
                optimizer.step()
        self.module_.eval()
        return self


class TimedTrainer:
    """Measures the time a bank spends in its own training and evaluation code."""

    def __init__(self, inner: EstimatorTrainer) -> None:
        self.inner = inner
        self.compute_seconds = 0.0

    def fit(self, arrays: list[np.ndarray], config: Mapping) -> tuple[list[np.ndarray], int, dict[str, float]]:
        t0 = time.perf_counter()
        try:
            return self.inner.fit(arrays, config)
        finally:
            self.compute_seconds += time.perf_counter() - t0

    def evaluate(self, arrays: list[np.ndarray], config: Mapping) -> tuple[float, int, dict[str, float]]:
        t0 = time.perf_counter()
        try:
            return self.inner.evaluate(arrays, config)
        finally:
            self.compute_seconds += time.perf_counter() - t0


def make_banks(
    n_banks: int, n_train: int, n_eval: int, seed: int
) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray, np.ndarray]:
    """Non-IID synthetic banks: own benign shift, 2 of 8 attack families each, 5% attacks."""
    rng = np.random.default_rng(seed)
    families = rng.normal(0, 1, (N_FAMILIES, N_FEATURES))
    families *= 5.0 / np.linalg.norm(families, axis=1, keepdims=True)

    def sample(n: int, fams: list[int], shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_attack = max(len(fams), int(0.05 * n))
        benign = rng.normal(0, 1, (n - n_attack, N_FEATURES)) + shift
        which = rng.choice(fams, n_attack)
        attacks = rng.normal(0, 1, (n_attack, N_FEATURES)) + families[which] + shift
        X = np.vstack([benign, attacks]).astype(np.float32)  # noqa: N806
        y = np.concatenate([np.zeros(n - n_attack), np.ones(n_attack)]).astype(np.int64)
        return X, y

    banks = []
    for _ in range(n_banks):
        shift = rng.normal(0, 0.3, N_FEATURES)
        fams = list(rng.choice(N_FAMILIES, 2, replace=False))
        banks.append((*sample(n_train, fams, shift), *sample(n_eval, fams, shift)))
    X_test, y_test = sample(4000, list(range(N_FAMILIES)), np.zeros(N_FEATURES))  # noqa: N806
    return banks, X_test, y_test


def bench(n_banks: int, rounds: int, n_train: int, n_eval: int, seed: int) -> dict[str, object]:
    banks, X_test, y_test = make_banks(n_banks, n_train, n_eval, seed)  # noqa: N806
    trainers = [
        TimedTrainer(EstimatorTrainer(TorchMLP(seed=seed + i).init_weights(N_FEATURES), *bank))
        for i, bank in enumerate(banks)
    ]
    model = TorchMLP(seed=seed).init_weights(N_FEATURES)
    initial = model.get_weights()
    compute_marks: list[float] = []
    config = FederationConfig(num_rounds=rounds, local_epochs=1, seed=seed, round_timeout_s=600)

    t0 = time.perf_counter()
    result = run_federation(
        trainers, initial, config, on_round=lambda r: compute_marks.append(sum(t.compute_seconds for t in trainers))
    )
    wall = time.perf_counter() - t0

    train_rounds = [r for r in result.history if r.server_round > 0]
    compute_per_round = np.diff(compute_marks)  # rounds 1..R (mark 0 = after the initial evaluation)
    seconds = [r.seconds for r in train_rounds]
    overhead = [s - c for s, c in zip(seconds, compute_per_round, strict=True)]
    pr_before = float(average_precision_score(y_test, model.decision_function(X_test)))
    pr_after = float(average_precision_score(y_test, model.set_weights(result.arrays).decision_function(X_test)))
    return {
        "banks": n_banks,
        "rounds": rounds,
        "round_seconds_mean": statistics.mean(seconds),
        "round_seconds_min": min(seconds),
        "round_seconds_max": max(seconds),
        "member_compute_seconds_per_round": float(np.mean(compute_per_round)),
        "coordination_overhead_seconds_per_round": statistics.mean(overhead),
        "bytes_down_per_round": statistics.mean(r.bytes_down for r in train_rounds),
        "bytes_up_per_round": statistics.mean(r.bytes_up for r in train_rounds),
        "bytes_down_per_bank_per_round": statistics.mean(r.bytes_down for r in train_rounds) / n_banks,
        "bytes_up_per_bank_per_round": statistics.mean(r.bytes_up for r in train_rounds) / n_banks,
        "total_bytes": result.bytes_down + result.bytes_up,
        "wall_seconds": wall,
        "pooled_test_pr_auc_initial": pr_before,
        "pooled_test_pr_auc_final": pr_after,
        "federated_eval_pr_auc_final": train_rounds[-1].evaluate_metrics.get("pr_auc"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, nargs="+", default=[5, 10, 50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=2000, help="training rows per bank")
    parser.add_argument("--eval-rows", type=int, default=500, help="evaluation rows per bank")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    logging.getLogger("flwr").setLevel(logging.WARNING)  # Flower logs every round at INFO

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    n_params = sum(a.size for a in TorchMLP().init_weights(N_FEATURES).get_weights())
    env = {
        "python": sys.version.split()[0],
        "flwr": flwr.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "commit": commit,
        "seed": args.seed,
        "model": f"MLP {N_FEATURES}-{HIDDEN[0]}-{HIDDEN[1]}-1, {n_params} float32 parameters ({4 * n_params} B)",
        "data_per_bank": f"{args.train_rows} train + {args.eval_rows} eval rows x {N_FEATURES} features, 5% attacks",
        "strategy": "FedAvg, 1 local epoch, full participation, federated evaluation every round",
        "runtime": "mamori in-process Flower grid (no Ray, no sockets)",
    }
    print("# mamori federation benchmark")
    for key, value in env.items():
        print(f"{key:>14}: {value}")
    print()
    header = (
        f"{'banks':>5} {'round s (mean/min/max)':>24} {'bank compute s':>14} {'overhead s':>10} "
        f"{'down B/round':>13} {'up B/round':>12} {'down B/bank':>11} {'up B/bank':>10} {'PR-AUC 0->R':>13}"
    )
    print(header)
    warm = TorchMLP().init_weights(N_FEATURES)  # first torch/Adam step pays one-off set-up costs: not a round's
    warm.fit_local(np.zeros((256, N_FEATURES), np.float32), np.arange(256) % 2, epochs=1)
    rows = []
    for n in args.banks:
        row = bench(n, args.rounds, args.train_rows, args.eval_rows, args.seed)
        rows.append(row)
        print(
            f"{n:>5} {row['round_seconds_mean']:>10.3f}/{row['round_seconds_min']:.3f}/{row['round_seconds_max']:.3f}"
            f" {row['member_compute_seconds_per_round']:>14.3f} {row['coordination_overhead_seconds_per_round']:>10.3f}"
            f" {row['bytes_down_per_round']:>13,.0f} {row['bytes_up_per_round']:>12,.0f}"
            f" {row['bytes_down_per_bank_per_round']:>11,.0f} {row['bytes_up_per_bank_per_round']:>10,.0f}"
            f" {row['pooled_test_pr_auc_initial']:>6.3f}->{row['pooled_test_pr_auc_final']:.3f}",
            flush=True,
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        ratio = last["round_seconds_mean"] / first["round_seconds_mean"]
        growth = last["banks"] / first["banks"]
        print(f"\nround time {last['banks']} vs {first['banks']} banks: x{ratio:.2f} (banks x{growth:.0f})")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
