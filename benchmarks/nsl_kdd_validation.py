"""Choose the NSL-KDD hybrid's autoencoder and fusion on KDDTrain+ only: leave-attack-types-out validation.

Run: ``.venv/bin/python benchmarks/nsl_kdd_validation.py --variants base,denoise:n0.3:e80 --scores top3,chi``.

Autoencoder variants: ``base`` (plain) or ``denoise`` (Gaussian input noise while training, std 0.1), ``onehot01``
/ ``denoise01`` (the same with one-hot columns fed as raw 0/1 instead of z-scores), each optionally followed by
``:nX`` (noise std), ``:eN`` (epochs, default ``--epochs``) and ``:hA-B`` (encoder widths). Scores: ``topK`` (the
shipped ``ReconstructionScorer(aggregate="top")``), ``mean``, ``chi`` (standardised residuals: log of the mean
ratio of squared error to its benign mean), ``mse``; ``f0.01`` appended floors the benign error scale.

KDDTest+ holds 17 attack types never seen in training, so the label-free autoencoder carries the low-FPR figure.
To stand in for unseen attacks without touching KDDTest+, each of three folds holds out a whole group of attack
types of KDDTrain+ from training. Per fold (seeded): 60% of normal rows and 80% of the other attacks train a
centralized classifier and autoencoder (at most ``--max-train`` rows), 20% of normal rows calibrate (per-feature
error scales, benign score histograms), and the remaining 20% of normal rows, 20% of the seen attacks and every
row of the held-out types are judged. Prints TPR at 1% FPR (all judged attacks / held-out types only) and PR-AUC,
averaged over the folds, for every autoencoder variant, anomaly score and fusion rule, plus an IsolationForest on
normal rows for scale. KDDTest+ is never read.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from importlib.metadata import version

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score

from mamori.bench import load_dataset
from mamori.features import FeatureStats, Standardizer
from mamori.models import AttackClassifier, AutoencoderDetector, ScoreStats, tpr_at_fpr

#: Held-out attack-type groups (every KDDTrain+ attack type is held out in some fold except the rest of neptune).
FOLDS: tuple[tuple[str, ...], ...] = (
    ("satan", "smurf", "guess_passwd", "warezclient", "back", "imap"),
    ("ipsweep", "portsweep", "teardrop", "pod", "warezmaster", "buffer_overflow", "rootkit"),
    ("nmap", "neptune*", "ftp_write", "multihop", "land", "phf", "loadmodule", "perl", "spy"),
)


def _fold_rows(cat: np.ndarray, held: tuple[str, ...], rng: np.random.Generator, max_train: int):
    normal = np.flatnonzero(cat == "normal")
    rng.shuffle(normal)
    n = len(normal)
    n_tr, n_cal = int(0.6 * n), int(0.2 * n)
    tr_norm, cal, ev_norm = normal[:n_tr], normal[n_tr : n_tr + n_cal], normal[n_tr + n_cal :]
    held_mask = np.isin(cat, [h for h in held if not h.endswith("*")])
    for h in held:
        if h.endswith("*"):  # half of a large type is held out
            rows = np.flatnonzero(cat == h[:-1])
            rng.shuffle(rows)
            held_mask[rows[: len(rows) // 2]] = True
    held_rows = np.flatnonzero(held_mask)
    seen = np.flatnonzero((cat != "normal") & ~held_mask)
    rng.shuffle(seen)
    n_seen_tr = int(0.8 * len(seen))
    tr_att, ev_att = seen[:n_seen_tr], seen[n_seen_tr:]
    train = np.concatenate([tr_norm, tr_att])
    if len(train) > max_train:
        train = rng.choice(train, size=max_train, replace=False)
    return np.sort(train), cal, ev_norm, ev_att, held_rows


def _scores(err: np.ndarray, scale: np.ndarray, kind: str) -> np.ndarray:
    if kind.startswith("top"):
        k, floor = (kind[3:].split("f") + [""])[:2]
        sc = np.maximum(scale, float(floor)) if floor else scale
        r = err / sc
        k = int(k)
        return np.log(np.partition(r, r.shape[1] - k, axis=1)[:, -k:] + 1e-12).mean(axis=1)
    if kind == "mean":
        return np.log1p(err / scale).mean(axis=1)
    if kind.startswith("chi"):  # standardised residuals: sum of squared errors in units of their benign mean
        floor = kind[3:].lstrip("f")
        sc = np.maximum(scale, float(floor)) if floor else scale
        return np.log((err / sc).mean(axis=1) + 1e-12)
    if kind == "mse":
        return np.log(err.mean(axis=1) + 1e-12)
    raise ValueError(kind)


def _surprise(cal: np.ndarray, s: np.ndarray) -> np.ndarray:
    return -np.log10(ScoreStats.from_scores(cal).tail_probability(s))


def _judge(s_norm: np.ndarray, s_att: np.ndarray, s_held: np.ndarray) -> tuple[float, float, float]:
    y_all = np.r_[np.zeros(len(s_norm)), np.ones(len(s_att) + len(s_held))]
    s_all = np.r_[s_norm, s_att, s_held]
    y_h = np.r_[np.zeros(len(s_norm)), np.ones(len(s_held))]
    s_h = np.r_[s_norm, s_held]
    return tpr_at_fpr(y_all, s_all, 0.01), tpr_at_fpr(y_h, s_h, 0.01), float(average_precision_score(y_all, s_all))


def main() -> None:
    """Print leave-attack-types-out validation figures inside KDDTrain+."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variants", default="base")
    ap.add_argument("--scores", default="top3,mean,chi,chif0.01,top3f0.01,mse")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--clf-epochs", type=int, default=40)
    ap.add_argument("--max-train", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="0.5,1,2")
    ap.add_argument("--iso-fusion", action="store_true", help="Also fuse an IsolationForest surprise.")
    args = ap.parse_args()
    print(f"versions: mamori {version('mamori')}, torch {version('torch')}; load {os.getloadavg()[0]:.1f}")
    ds = load_dataset("nsl-kdd")
    cat = ds.category_train
    one_hot = np.array(["=" in n for n in ds.feature_names])
    table: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for f, held in enumerate(FOLDS):
        rng = np.random.default_rng([args.seed, f])
        train, cal, ev_norm, ev_att, held_rows = _fold_rows(cat, held, rng, args.max_train)
        scaler = Standardizer().fit_stats(FeatureStats.from_matrix(ds.X_train[train]))
        X = scaler.transform(ds.X_train)
        ytr = ds.y_train[train]
        t0 = time.perf_counter()
        clf = AttackClassifier(epochs=args.clf_epochs, seed=args.seed).fit(X[train], ytr)
        logit = {
            k: clf.decision_function(X[r]) for k, r in (("cal", cal), ("n", ev_norm), ("a", ev_att), ("h", held_rows))
        }
        table["classifier"].append(_judge(logit["n"], logit["a"], logit["h"]))
        s_clf = {k: _surprise(logit["cal"], v) for k, v in logit.items()}
        iso = IsolationForest(n_estimators=200, random_state=args.seed).fit(ds.X_train[train][ytr == 0])
        iso_s = {
            k: -iso.score_samples(ds.X_train[r])
            for k, r in (("cal", cal), ("n", ev_norm), ("a", ev_att), ("h", held_rows))
        }
        s_iso = {k: _surprise(iso_s["cal"], v) for k, v in iso_s.items()}
        table["isolation forest (raw features)"].append(_judge(iso_s["n"], iso_s["a"], iso_s["h"]))
        for variant in args.variants.split(","):
            Xa = X
            name, *opts = variant.split(":")
            hidden, epochs, noise = (64, 16), args.epochs, 0.1
            for o in opts:  # h<widths> encoder widths, e<epochs>, n<noise std>
                if o.startswith("h"):
                    hidden = tuple(int(v) for v in o[1:].split("-"))
                elif o.startswith("e"):
                    epochs = int(o[1:])
                elif o.startswith("n"):
                    noise = float(o[1:])
            if name in ("onehot01", "denoise01"):  # one-hot columns as raw 0/1 instead of z-scores
                Xa = X.copy()
                Xa[:, one_hot] = ds.X_train[:, one_hot]
            normal_train = train[ytr == 0]
            noise = noise if name.startswith("denoise") else 0.0  # denoising: Gaussian input noise while training
            ae = AutoencoderDetector(hidden_layers=hidden, epochs=epochs, seed=args.seed, noise=noise)
            ae.fit(Xa[normal_train])
            err = {
                k: ae.reconstruction_errors(Xa[r])
                for k, r in (("cal", cal), ("n", ev_norm), ("a", ev_att), ("h", held_rows))
            }
            scale = err["cal"].mean(axis=0) + 1e-6
            for kind in args.scores.split(","):
                s = {k: _scores(v, scale, kind) for k, v in err.items()}
                key = f"AE {variant} {kind}"
                table[key].append(_judge(s["n"], s["a"], s["h"]))
                s_ae = {k: _surprise(s["cal"], v) for k, v in s.items()}
                for w in [float(v) for v in args.weights.split(",")]:
                    fused = {k: s_clf[k] + w * s_ae[k] for k in ("n", "a", "h")}
                    table[f"sum(clf + {w:g}·AE) {variant} {kind}"].append(_judge(fused["n"], fused["a"], fused["h"]))
                fused = {k: np.maximum(s_clf[k], s_ae[k]) for k in ("n", "a", "h")}
                table[f"max {variant} {kind}"].append(_judge(fused["n"], fused["a"], fused["h"]))
                if args.iso_fusion:  # a third, IsolationForest view
                    fused = {k: s_clf[k] + s_ae[k] + s_iso[k] for k in ("n", "a", "h")}
                    table[f"sum(clf + AE + iso) {variant} {kind}"].append(_judge(fused["n"], fused["a"], fused["h"]))
        print(f"fold {f}: {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'detector':<48} TPR@1%FPR all  held-out  PR-AUC   (mean over {len(FOLDS)} folds)")
    for key, rows in table.items():
        a = np.mean(rows, axis=0)
        per = " ".join(f"{r[1]:.3f}" for r in rows)
        print(f"{key:<48} {a[0]:.3f}          {a[1]:.3f}     {a[2]:.3f}   held-out per fold {per}")


if __name__ == "__main__":
    main()
