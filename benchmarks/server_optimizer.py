"""Choose the federated classifier's server optimizer for ``mamori bench`` on VALIDATION rows only.

Run: ``.venv/bin/python benchmarks/server_optimizer.py csic --seeds 0,1 --candidates fedavg,fedavgm:0.9:0.3``.

Uses the bench's own split (``mamori.bench.runner._members``: each institution holds out 15% of its training rows)
and trains the bench's federated classifier once per candidate ``name[:momentum[:lr]]``; every figure is measured on
the pooled validation rows of the institutions (carved from the training split), never on the test split. Prints
ROC-AUC, the best F1 over thresholds and TPR at 1% FPR per seed and candidate, plus the centralized MLP on the same
rows for scale, versions, seeds and load average.
"""

from __future__ import annotations

import argparse
import os
import time
from importlib.metadata import version

import numpy as np

from mamori.bench import BenchConfig, load_dataset
from mamori.bench.metrics import best_f1_threshold, score_metrics
from mamori.bench.runner import _Context, _members


def _candidate(text: str) -> dict[str, object]:
    name, *rest = text.split(":")
    out: dict[str, object] = {"server_optimizer": name}
    if rest:
        out["server_momentum"] = float(rest[0])
    if len(rest) > 1:
        out["server_lr"] = float(rest[1])
    return out


def _judge(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    m = score_metrics(y, scores, best_f1_threshold(y, scores))
    return {k: float(m[k]) for k in ("roc_auc", "f1", "tpr_at_1pct_fpr")}


def main() -> None:
    """Print validation figures of each candidate server optimizer."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--candidates", default="fedavg,fedavgm:0.9:0.3,fedavgm:0.9:1.0")
    ap.add_argument("--centralized", action="store_true", help="Also train the centralized MLP on the same rows.")
    args = ap.parse_args()
    print(f"versions: mamori {version('mamori')}, flwr {version('flwr')}, torch {version('torch')}")
    ds = load_dataset(args.dataset)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for cand in args.candidates.split(","):
            config = BenchConfig(seed=seed, **_candidate(cand))  # type: ignore[arg-type]
            members, _ = _members(ds, config)
            ctx = _Context(ds, config, members)
            local_epochs = config.epochs_per_round(ctx.text)
            client = config.client_step(ctx.text, ds.name)  # the bench's member settings (optimiser, schedule)
            scaled = [
                (m.name, ctx.scaler.transform(m.X_train), m.y_train, ctx.scaler.transform(m.X_val), m.y_val)
                for m in members
            ]
            t0 = time.perf_counter()
            model, _info = ctx.federate(
                lambda ctx=ctx, e=client["local_epochs"]: ctx.classifier(e, ctx.pos_weight, federated=True),
                scaled,
                "federated classifier",
                lambda *a: None,
                server_optimizer=True,
                local_epochs=client["local_epochs"],
                rounds=client["rounds"],
            )
            fig = _judge(ctx.y_val, model.decision_function(ctx.X_val))
            took, load = time.perf_counter() - t0, os.getloadavg()[0]
            print(
                f"{args.dataset} seed {seed} {cand:<22} validation ROC-AUC {fig['roc_auc']:.4f} "
                f"best-F1 {fig['f1']:.4f} TPR@1%FPR {fig['tpr_at_1pct_fpr']:.4f} ({took:.0f} s, load {load:.1f})",
                flush=True,
            )
        if args.centralized:
            Xtr = np.concatenate([ctx.scaler.transform(m.X_train) for m in members])
            ytr = np.concatenate([m.y_train for m in members])
            clf = ctx.classifier(config.rounds * local_epochs, ctx.pos_weight).fit(Xtr, ytr)
            fig = _judge(ctx.y_val, clf.decision_function(ctx.X_val))
            print(
                f"{args.dataset} seed {seed} centralized MLP        validation ROC-AUC {fig['roc_auc']:.4f} "
                f"best-F1 {fig['f1']:.4f} TPR@1%FPR {fig['tpr_at_1pct_fpr']:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
