"""The centralized MLP of ``mamori bench csic --institutions 10 --alpha 0.3 --seed N``, trained alone.

Run: ``.venv/bin/python benchmarks/bench_centralized_mlp.py [--seed N] [--data-dir DIR]``; with another checkout,
``PYTHONPATH=/tmp/wt-REV/src .venv/bin/python benchmarks/bench_centralized_mlp.py`` (the virtualenv's ``mamori``
is a plain path entry, so ``PYTHONPATH`` wins).

It builds the bench's institutions, consortium scaler and pooled training rows, trains the same
:class:`~mamori.models.AttackClassifier` with the same settings and judges it as the bench does (TPR at 1% FPR on
the CSIC test part), in ~20 s instead of a whole bench. It prints SHA-256 prefixes of the dataset, the pooled rows
and the trained weights: equal weights mean bit-identical training between two commits, or between two kernel
settings (``MKL_CBWR``, ``ATEN_CPU_CAPABILITY``) on one machine (docs/benchmarks.md, *Reproducibility*). It reads
the test part only to repeat a bench's figure; it chooses nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Iterable

import numpy as np

import mamori
from mamori.bench import BenchConfig, load_dataset
from mamori.bench.runner import _Context, _members

try:
    from mamori.bench.provenance import numerics as _numerics
except ImportError:  # a checkout older than the bench's numerics record

    def _numerics() -> dict[str, str]:
        return {}


def _digest(arrays: Iterable[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    """Train the bench's centralized MLP for one seed and print its figures and hashes as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    ds = load_dataset("csic", data_dir=args.data_dir, split_seed=0)
    config = BenchConfig(institutions=10, alpha=0.3, seed=args.seed)
    members, _parts = _members(ds, config)
    ctx = _Context(ds, config, members)
    epochs = config.rounds * config.epochs_per_round(ctx.text)
    # The pooled rows exactly as run_bench builds them (CSIC has no benign-mode copies).
    X_pool = np.concatenate([ctx.scaler.transform(m.X_train) for m in members])
    y_pool = np.concatenate([m.y_train for m in members])
    started = time.perf_counter()
    clf = ctx.classifier(epochs, ctx.pos_weight).fit(X_pool, y_pool)
    seconds = time.perf_counter() - started
    r = ctx.judge(clf.decision_function, ctx.X_val, ctx.y_val, ctx.X_test)
    print(
        json.dumps(
            {
                "mamori": mamori.__file__,
                "seed": args.seed,
                "dataset_sha": _digest([ds.X_train, ds.y_train, ds.X_test, ds.y_test]),
                "pool_sha": _digest([X_pool, y_pool]),
                "weights_sha": _digest(clf.get_weights()),
                "tpr_at_1pct_fpr": r["tpr_at_1pct_fpr"],
                "pr_auc": r["pr_auc"],
                "roc_auc": r["roc_auc"],
                "train_seconds": round(seconds, 1),
                "numerics": _numerics(),
            }
        )
    )


if __name__ == "__main__":
    main()
