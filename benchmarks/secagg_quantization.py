"""How far SecAgg+'s quantization moves the federated model from plain FedAvg, against its first-round bound.

Run: ``.venv/bin/python benchmarks/secagg_quantization.py --repeats 12``.

Flower's SecAgg+ scales each member's update by ``examples / max_weight`` and rounds it stochastically (with the
global, unseeded ``np.random``) to steps of ``2 * clipping_range / quantization_range``. With ``max_weight=None``
mamori encodes the first round at 1e6 and later rounds at 4x the largest example count, so the first round's error
dominates. This trains the same seeded members (a synthetic binary task split in four, mamori's AttackClassifier)
with plain FedAvg once and with SecAgg+ ``--repeats`` times per weight range, and prints the largest absolute weight
difference (max and median over the repeats) next to the bound ``members * step * max_weight / total examples`` -
the figure tests/federation/test_secagg.py uses as its tolerance. Two grids: Flower's default (2**22 levels, masks
modulo 2**32) and mamori's default since SecureAggregationConfig moved to 2**30 levels modulo 2**42 (256 times finer;
members hand SecAgg+ float64 updates, since float32 would round the scaled update to 24 bits first). Prints versions,
seeds and the load average.
"""

from __future__ import annotations

import argparse
import logging
import os
from importlib.metadata import version

import numpy as np
from sklearn.datasets import make_classification

from mamori.federation import EstimatorTrainer, FederationConfig, SecureAggregationConfig, run_federation
from mamori.federation.secagg import _FIRST_MAX_WEIGHT
from mamori.models import AttackClassifier

MEMBERS = 4
N_FEATURES = 12


def _trainers(seed: int) -> list[EstimatorTrainer]:
    X, y = make_classification(n_samples=MEMBERS * 400, n_features=N_FEATURES, weights=[0.8], random_state=seed)  # noqa: N806
    out = []
    for part in np.array_split(np.arange(len(y)), MEMBERS):
        train, held = part[:300], part[300:]
        model = AttackClassifier(hidden_layers=(16,), dropout=0.0, seed=seed).init_weights(N_FEATURES)
        out.append(EstimatorTrainer(model, X[train], y[train], X[held], y[held]))
    return out


def _largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x.astype(np.float64) - y))) for x, y in zip(a, b, strict=True))


def main() -> None:
    """Print the measured differences and the bound per weight range."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # Flower logs every SecAgg+ stage
    initial = AttackClassifier(hidden_layers=(16,), dropout=0.0, seed=args.seed).init_weights(N_FEATURES).get_weights()
    total = sum(len(t.X_train) for t in _trainers(args.seed))
    print(f"mamori {version('mamori')}, flwr {version('flwr')}, torch {version('torch')}, numpy {np.__version__}; "
          f"{MEMBERS} members, {total} training rows, {args.rounds} rounds, seed {args.seed}, "
          f"{args.repeats} SecAgg+ runs per weight range (federation seeds {args.seed}.."
          f"{args.seed + args.repeats - 1}); "
          f"load average {os.getloadavg()[0]:.2f}")
    base = FederationConfig(num_rounds=args.rounds, min_train_nodes=MEMBERS, seed=args.seed, fraction_evaluate=0.0,
                            evaluate_initial=False)
    # A SecAgg+ run's rounding follows the federation's seed (server_process_state), so each repeat is a run with
    # its own federation seed, compared with the plain run of that seed (the members' data stay the same).
    seeds = [args.seed + r for r in range(args.repeats)]
    plain = {s: run_federation(_trainers(args.seed), initial, base.model_copy(update={"seed": s})).arrays
             for s in seeds}
    print(f"{'grid':>22} {'max_weight':>12} {'bound (round 1)':>16} {'max diff':>10} {'median diff':>12}")
    grids = {"Flower 2**22 / 2**32": {"quantization_range": 2**22, "modulus_range": 2**32},
             "mamori 2**30 / 2**42": {}}
    for grid, ranges in grids.items():
        for max_weight in (None, 1000.0):
            secagg = SecureAggregationConfig(max_weight=max_weight, **ranges)
            config = base.model_copy(update={"secure_aggregation": True, "secagg": secagg})
            step = 2 * secagg.clipping_range / secagg.quantization_range
            bound = MEMBERS * step * (max_weight or _FIRST_MAX_WEIGHT) / total
            diffs = [_largest_difference(plain[s], run_federation(_trainers(args.seed), initial,
                                                                 config.model_copy(update={"seed": s})).arrays)
                     for s in seeds]
            label = "None (1e6)" if max_weight is None else f"{max_weight:g}"
            print(f"{grid:>22} {label:>12} {bound:16.3g} {max(diffs):10.3g} {float(np.median(diffs)):12.3g}")


if __name__ == "__main__":
    main()
