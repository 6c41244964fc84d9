"""Why the NSL-KDD hybrid misses its bar: KDDTest+ normal rows that sit among KDDTrain+'s attacks.

Run: ``.venv/bin/python benchmarks/nsl_kdd_shift_diagnostic.py [--scores scores-nsl-kdd-seed0.npz]``.

A gap analysis, not a model choice: it reads KDDTest+'s labels to explain a figure the bench has already
reported, and nothing in ``mamori bench`` is chosen from it (docs/benchmarks.md, *Where the hybrid's bar is lost*).

Part 1 (the data alone). Every row is standardised with KDDTrain+'s statistics (as the bench's consortium-wide
scaler does) and matched to its 5 nearest KDDTrain+ rows (Euclidean). For each KDDTest+ normal row it counts how
often the nearest neighbour, and all 5, are labelled attack — and the same for a seeded 20% of KDDTrain+ held out
against the other 80% (the in-distribution rate, which is what any validation carved out of KDDTrain+ sees).
Exact feature twins with the other label are counted too.

Part 2 (``--scores``, the file ``mamori bench nsl-kdd --save-scores`` writes). For each saved model: its threshold
at 1% FPR on KDDTest+, how many of the "attack-territory" normal rows (all 5 nearest training rows are attacks)
score above it, and — as a counterfactual only — its TPR at 1% FPR with those rows left out of the normal rows.
The hybrid's member surprises are broken down the same way.
"""

from __future__ import annotations

import argparse
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score
from sklearn.neighbors import NearestNeighbors

from mamori.bench import load_dataset, load_test_scores
from mamori.features import FeatureStats, Standardizer
from mamori.models import tpr_at_fpr


def _neighbour_labels(Z_ref: np.ndarray, y_ref: np.ndarray, Z: np.ndarray, k: int = 5) -> tuple[np.ndarray, ...]:
    dist, idx = NearestNeighbors(n_neighbors=k).fit(Z_ref).kneighbors(Z)
    return y_ref[idx[:, 0]], y_ref[idx].mean(axis=1), dist[:, 0], idx[:, 0]


def _exact_conflicts(X_ref: np.ndarray, y_ref: np.ndarray, X: np.ndarray, y: np.ndarray) -> int:
    labels: dict[bytes, set[int]] = {}
    for row, label in zip(np.ascontiguousarray(X_ref, dtype=np.float32), y_ref, strict=True):
        labels.setdefault(row.tobytes(), set()).add(int(label))
    rows = np.ascontiguousarray(X, dtype=np.float32)
    return sum(labels.get(r.tobytes(), set()) == {1 - int(lab)} for r, lab in zip(rows, y, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, action="append", default=[], help="scores-nsl-kdd-seedN.npz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the in-distribution 20%% hold-out")
    args = parser.parse_args()
    print(
        f"versions: mamori {version('mamori')}, scikit-learn {version('scikit-learn')}; "
        f"seed {args.seed}; load {os.getloadavg()[0]:.1f}"
    )
    ds = load_dataset("nsl-kdd")
    scaler = Standardizer().fit_stats(FeatureStats.from_matrix(ds.X_train))
    Z_tr, Z_te = scaler.transform(ds.X_train), scaler.transform(ds.X_test)
    normal_te = ds.y_test == 0
    lab1, frac5, dist1, nn = _neighbour_labels(Z_tr, ds.y_train, Z_te[normal_te])
    territory = frac5 == 1.0  # all 5 nearest training rows are attacks
    n_norm = int(normal_te.sum())
    print(f"KDDTest+ normal rows: {n_norm:,}")
    print(
        f"  exact feature twin in KDDTrain+ labelled attack only: "
        f"{_exact_conflicts(ds.X_train, ds.y_train, ds.X_test[normal_te], ds.y_test[normal_te])}"
    )
    print(
        f"  nearest KDDTrain+ row is an attack: {np.mean(lab1 == 1):.4f}; all 5 nearest are attacks: "
        f"{territory.mean():.4f} ({int(territory.sum())} rows, {territory.mean() / 0.01:.1f}x the 1% FPR budget)"
    )
    cats, counts = np.unique(ds.category_train[nn[territory]], return_counts=True)
    order = np.argsort(-counts)
    print("  their nearest training attack's type: " + ", ".join(f"{cats[i]} {counts[i]}" for i in order[:6]))
    print(
        f"  distance to the nearest training row (z units), median: attack-territory {np.median(dist1[territory]):.2f}"
        f", other normal rows {np.median(dist1[~territory]):.2f}"
    )
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(ds.y_train))
    held, kept = perm[: len(perm) // 5], perm[len(perm) // 5 :]
    held_norm = held[ds.y_train[held] == 0]
    lab1_in, frac5_in, _, _ = _neighbour_labels(Z_tr[kept], ds.y_train[kept], Z_tr[held_norm])
    print(
        f"In-distribution (20% of KDDTrain+'s normal rows against the other 80%, seed {args.seed}): nearest is an "
        f"attack {np.mean(lab1_in == 1):.4f}; all 5 nearest are attacks {np.mean(frac5_in == 1.0):.4f}"
    )

    for path in args.scores:
        saved = load_test_scores(path)
        y = saved["y_test"]
        if len(y) != len(ds.y_test) or not np.array_equal(y, ds.y_test):
            raise SystemExit(f"{path}: its y_test is not KDDTest+'s (saved by another dataset or split?)")
        inside = np.zeros(len(y), dtype=bool)
        inside[np.flatnonzero(normal_te)[territory]] = True
        print(f"\n{path}: models on KDDTest+; 'without them': TPR at 1% FPR (PR-AUC) with the {int(inside.sum())}")
        print("attack-territory normal rows left out (a counterfactual, not a result)")
        header = f"{'model':<46} {'TPR@1%FPR':>9} {'PR-AUC':>7} {'territory rows > thr.':>22} {'without them':>13}"
        print(header)
        keep = ~inside
        for key in saved:
            if key in ("y_test", "category_test"):
                continue
            s = saved[key]
            thr = np.quantile(s[y == 0], 0.99)  # the score above which 1% of KDDTest+'s normal rows lie
            above = int((s[inside] > thr).sum())
            print(
                f"{key:<46} {tpr_at_fpr(y, s, 0.01):>9.3f} {average_precision_score(y, s):>7.3f} "
                f"{above:>13} / {int(inside.sum())} "
                f"{tpr_at_fpr(y[keep], s[keep], 0.01):>6.3f} ({average_precision_score(y[keep], s[keep]):.3f})"
            )


if __name__ == "__main__":
    main()
