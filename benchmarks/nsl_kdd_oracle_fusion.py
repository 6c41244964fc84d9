"""An upper bound, tuned on KDDTest+ itself: could any weighting of the federated models meet issue 13's NSL-KDD bar?

Run: ``.venv/bin/python benchmarks/nsl_kdd_oracle_fusion.py --scores scores-nsl-kdd-seed0.npz [--scores ...]``
(the files ``mamori bench nsl-kdd --save-scores`` writes).

**This chooses on the test split on purpose and is never a model choice.** The bar of issue 13 (federated hybrid
>= 0.60 TPR at 1% FPR *and* >= 0.97 PR-AUC on KDDTest+) is missed by every detector chosen on training data
(docs/benchmarks.md, *Against the goals*). This script asks the converse: if the fusion were allowed to look at
KDDTest+'s labels, would any non-negative weighting of the federated models' scores clear both bars at once? If even
that oracle cannot, no rule of those families over these models can, however it is chosen.

Each saved federated score (classifier, denoising autoencoder, isolation forest with benign-rarity columns) becomes
a surprise calibrated on KDDTest+'s own normal rows -- ``-log10`` of the share of test normal rows scoring at least
as high (the hybrid's transform, with the test split as its calibration set: the oracle part) -- and every weighted
sum ``sum_m w_m * s_m`` and every weighted maximum ``max_m w_m * s_m`` (the hybrid's two fusion rules, with free
weights) on a grid of weights (each 0 to 1 in steps of ``--step``) is scored; ``--caps`` adds weighted sums of
surprises each capped first (classifier and autoencoder at 1, 2, 3 or not; forest at 2, 3 or not), the hybrid's
third ingredient (it caps the autoencoder's surprise at 2). Printed per seed and family: the best TPR at 1% FPR
among weightings with PR-AUC >= 0.97, the best PR-AUC among those with TPR >= 0.60, the best of each over all
weightings, the weighting that comes closest to both (the largest ``min(TPR / 0.60, PR-AUC / 0.97)``), and how many
meet both. Centralized HistGradientBoosting can be added as a fourth score
(``--with-hgb``) to ask the same of a supervised model the consortium does not train (it pools every row).
"""

from __future__ import annotations

import argparse
import itertools
import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from mamori.bench import load_test_scores
from mamori.models import tpr_at_fpr

MEMBERS = {
    "classifier": "classifier/federated",
    "autoencoder": "autoencoder/federated",
    "forest": "isolation_forest/federated",
}
TPR_BAR, PR_AUC_BAR = 0.60, 0.97
#: the two fusion families the hybrid knows (``fusion="sum"`` and ``"max"``), each with free non-negative weights
FAMILIES = {
    "sum": lambda s, w: s @ w,
    "max": lambda s, w: (s * w).max(axis=1),
}
#: ``--caps``: the ceilings tried on each member's surprise before a weighted sum (the hybrid caps the autoencoder's
#: at 2; ``inf`` is no cap)
CAPS = {"classifier": (1.0, 2.0, 3.0, np.inf), "autoencoder": (1.0, 2.0, 3.0, np.inf), "forest": (2.0, 3.0, np.inf)}


def normal_tail_surprise(score: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``-log10`` of the share of the test split's normal rows scoring at least as high (the oracle calibration)."""
    benign = np.sort(score[normal])
    at_least = len(benign) - np.searchsorted(benign, score, side="left")
    return -np.log10(np.maximum(at_least, 0.5) / len(benign))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, action="append", required=True, help="scores-nsl-kdd-seedN.npz")
    parser.add_argument("--step", type=float, default=0.1, help="grid step of each weight (0 to 1)")
    parser.add_argument("--with-hgb", action="store_true", help="add centralized HistGradientBoosting as a member")
    parser.add_argument("--caps", action="store_true",
                        help="also a weighted sum of capped surprises, over the ceilings in CAPS (slow: 48x the sums)")
    args = parser.parse_args()
    members = dict(MEMBERS)
    if args.with_hgb:
        members["hgb (centralized)"] = "hist_gradient_boosting/centralized"
    grid = np.round(np.arange(0.0, 1.0 + 1e-9, args.step), 6)
    print(
        f"versions: mamori {version('mamori')}, scikit-learn {version('scikit-learn')}, numpy {version('numpy')}; "
        f"weight grid step {args.step} over {list(members)}; load {os.getloadavg()[0]:.1f}"
    )
    for path in args.scores:
        saved = load_test_scores(path)
        y = saved["y_test"].astype(int)
        normal = y == 0
        s = np.stack([normal_tail_surprise(saved[key], normal) for key in members.values()], axis=1)
        rows: dict[str, list[tuple[str, float, float]]] = {family: [] for family in FAMILIES}
        if args.caps:
            rows["capped sum"] = []
        cap_grid = list(itertools.product(*(CAPS.get(name, (np.inf,)) for name in members))) if args.caps else []
        for w in itertools.product(grid, repeat=s.shape[1]):
            if not any(w):
                continue
            weights = np.asarray(w)
            label = "weights " + ", ".join(f"{n} {x:g}" for n, x in zip(members, w, strict=True))
            for family, fuse in FAMILIES.items():
                fused = fuse(s, weights)
                rows[family].append((label, tpr_at_fpr(y, fused, 0.01), average_precision_score(y, fused)))
            for caps in cap_grid:
                fused = np.minimum(s, np.asarray(caps)) @ weights
                cap_label = ", caps " + ", ".join(f"{n} {c:g}" for n, c in zip(members, caps, strict=True))
                rows["capped sum"].append((label + cap_label, tpr_at_fpr(y, fused, 0.01),
                                           average_precision_score(y, fused)))
        print(f"\n{path.name}: {len(rows['sum']):,} weightings a family; the hybrid as shipped "
              f"{tpr_at_fpr(y, saved['hybrid/federated'], 0.01):.3f} / "
              f"{average_precision_score(y, saved['hybrid/federated']):.3f}")
        for name, key in members.items():
            alone = saved[key]
            print(f"  {name} alone: {tpr_at_fpr(y, alone, 0.01):.3f} / {average_precision_score(y, alone):.3f}")

        def show(label: str, row: tuple[str, float, float] | None) -> None:
            if row is None:
                print(f"  {label}: none")
                return
            what, tpr, ap = row
            print(f"  {label}: TPR@1%FPR {tpr:.3f}, PR-AUC {ap:.4f} ({what})")

        for family, found in rows.items():
            print(f" {family} of weighted surprises:")
            pr_ok = [r for r in found if r[2] >= PR_AUC_BAR]
            tpr_ok = [r for r in found if r[1] >= TPR_BAR]
            show(f"best TPR with PR-AUC >= {PR_AUC_BAR}", max(pr_ok, key=lambda r: r[1]) if pr_ok else None)
            show(f"best PR-AUC with TPR >= {TPR_BAR}", max(tpr_ok, key=lambda r: r[2]) if tpr_ok else None)
            show("best PR-AUC of any weighting", max(found, key=lambda r: r[2]))
            show("best TPR of any weighting", max(found, key=lambda r: r[1]))
            show("closest to both", max(found, key=lambda r: min(r[1] / TPR_BAR, r[2] / PR_AUC_BAR)))
            both = [r for r in found if r[1] >= TPR_BAR and r[2] >= PR_AUC_BAR]
            print(f"  weightings meeting both bars: {len(both)} of {len(found):,}")


if __name__ == "__main__":
    main()
