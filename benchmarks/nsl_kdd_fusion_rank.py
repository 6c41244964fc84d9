"""Rank NSL-KDD hybrid fusion rules on the per-member surprises ``nsl_kdd_validation.py --dump`` saved.

Run: ``.venv/bin/python benchmarks/nsl_kdd_fusion_rank.py /tmp/s0.npz /tmp/s1.npz``.

Every rule combines the fold's calibrated member surprises (``clf``: classifier, ``ae``: autoencoder, ``fif``:
federated isolation forest, ``iso``: pooled IsolationForest, and any ``--extra-members`` of the dump, e.g. ``ood100``:
the trust model) without retraining; each file is one validation seed. ``--only a,b`` prints only rules whose name
contains one of the words.
Prints TPR at 1% FPR over all judged attacks / held-out attack types / the seen types' far variants (with
``--hard-variants``) and PR-AUC, each the mean over the folds, one block of columns per file. Only KDDTrain+ rows
are in a dump: KDDTest+ is never read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score

from mamori.models import tpr_at_fpr

Members = dict[str, np.ndarray]


def _damp(s: np.ndarray, knee: float, slope: float) -> np.ndarray:
    """The surprise up to ``knee``, then growing at ``slope`` (0: a cap)."""
    return np.minimum(s, knee) + slope * np.maximum(s - knee, 0.0)


def rules() -> dict[str, Callable[[Members], np.ndarray]]:
    """Candidate fusions of one part's member surprises."""
    out: dict[str, Callable[[Members], np.ndarray]] = {
        "classifier alone": lambda m: m["clf"],
        "autoencoder alone": lambda m: m["ae"],
        "federated forest alone": lambda m: m["fif"],
        "pooled IsolationForest alone": lambda m: m["iso"],
        "clf + AE + fIF": lambda m: m["clf"] + m["ae"] + m["fif"],
        "clf + fIF": lambda m: m["clf"] + m["fif"],
        "fIF + min(AE, 2)": lambda m: m["fif"] + np.minimum(m["ae"], 2),
        "clf + fIF + min(AE, 2) (shipped)": lambda m: m["clf"] + m["fif"] + np.minimum(m["ae"], 2),
    }
    for c in (0.5, 1.0, 1.5, 2.0, 3.0):
        out[f"min(clf, {c:g}) + fIF + min(AE, 2)"] = lambda m, c=c: (
            np.minimum(m["clf"], c) + m["fif"] + np.minimum(m["ae"], 2)
        )
        out[f"min(clf, {c:g}) + fIF"] = lambda m, c=c: np.minimum(m["clf"], c) + m["fif"]
    for knee in (1.0, 2.0):
        for slope in (0.1, 0.25):
            out[f"damp(clf, {knee:g}, {slope:g}) + fIF + min(AE, 2)"] = lambda m, k=knee, s=slope: (
                _damp(m["clf"], k, s) + m["fif"] + np.minimum(m["ae"], 2)
            )
    for w in (0.25, 0.5):
        out[f"{w:g}·clf + fIF + min(AE, 2)"] = lambda m, w=w: w * m["clf"] + m["fif"] + np.minimum(m["ae"], 2)
    for w in (1.5, 2.0):
        out[f"clf + {w:g}·fIF + min(AE, 2)"] = lambda m, w=w: m["clf"] + w * m["fif"] + np.minimum(m["ae"], 2)
        out[f"min(clf, 2) + {w:g}·fIF + min(AE, 2)"] = lambda m, w=w: (
            np.minimum(m["clf"], 2) + w * m["fif"] + np.minimum(m["ae"], 2)
        )
    for c in (1.0, 3.0):
        out[f"min(clf, 2) + fIF + min(AE, {c:g})"] = lambda m, c=c: (
            np.minimum(m["clf"], 2) + m["fif"] + np.minimum(m["ae"], c)
        )
    out["max(clf, fIF) + min(AE, 2)"] = lambda m: np.maximum(m["clf"], m["fif"]) + np.minimum(m["ae"], 2)
    # The classifier's surprise gated by the forest's: it counts in full only where the label-free forest is also
    # at least mildly surprised (fIF >= t), so benign rows only the classifier finds odd lose most of its vote.
    for t in (0.5, 1.0, 2.0):
        out[f"gate(clf | fIF, {t:g}) + fIF + min(AE, 2)"] = lambda m, t=t: (
            m["clf"] * np.clip(m["fif"] / t, 0.0, 1.0) + m["fif"] + np.minimum(m["ae"], 2)
        )
    # Sharper gates: the classifier's surprise counts only where the label-free members' evidence reaches a level
    # (hard: all or nothing; ramp: from lo to hi), or is capped by a multiple of that evidence.
    for t in (0.5, 1.0, 1.5):
        out[f"hardgate(clf | fIF >= {t:g}) + fIF + min(AE, 2)"] = lambda m, t=t: (
            m["clf"] * (m["fif"] >= t) + m["fif"] + np.minimum(m["ae"], 2)
        )
        out[f"hardgate(clf | fIF + min(AE, 2) >= {2 * t:g}) + fIF + min(AE, 2)"] = lambda m, t=t: (
            m["clf"] * (m["fif"] + np.minimum(m["ae"], 2) >= 2 * t) + m["fif"] + np.minimum(m["ae"], 2)
        )
    for lo, hi in ((0.5, 1.5), (0.5, 1.0), (1.0, 2.0), (0.3, 1.0)):
        out[f"ramp(clf | fIF, {lo:g}-{hi:g}) + fIF + min(AE, 2)"] = lambda m, lo=lo, hi=hi: (
            m["clf"] * np.clip((m["fif"] - lo) / (hi - lo), 0.0, 1.0) + m["fif"] + np.minimum(m["ae"], 2)
        )
    for c, k in ((1.0, 2.0), (2.0, 2.0), (1.0, 4.0), (2.0, 1.0)):
        out[f"min(clf, {c:g} + {k:g}·fIF) + fIF + min(AE, 2)"] = lambda m, c=c, k=k: (
            np.minimum(m["clf"], c + k * m["fif"]) + m["fif"] + np.minimum(m["ae"], 2)
        )
    return out


def extra_rules(extras: list[str]) -> dict[str, Callable[[Members], np.ndarray]]:
    """Rules with further label-free members (``--extra-members``: ``fif1024``, ``fkm100``, ...)."""
    out: dict[str, Callable[[Members], np.ndarray]] = {}
    gates = [e for e in extras if e.startswith("ood")]
    for e in extras:
        for g in gates if not e.startswith("ood") else []:  # the shipped trust gate with this member as the forest
            out[f"trust(clf | {g}, 1-3) + {e} + min(AE, 2)"] = lambda m, e=e, g=g: (
                m["clf"] * np.clip((3.0 - m[g]) / 2.0, 0.0, 1.0) + m[e] + np.minimum(m["ae"], 2)
            )
        out[f"{e} alone"] = lambda m, e=e: m[e]
        if e.startswith("ood"):  # the classifier's surprise counts in full only on rows like its training rows
            for lo, hi in ((1.0, 2.0), (1.0, 3.0), (2.0, 4.0), (1.5, 3.0)):
                out[f"trust(clf | {e}, {lo:g}-{hi:g}) + fIF + min(AE, 2)"] = lambda m, e=e, lo=lo, hi=hi: (
                    m["clf"] * np.clip((hi - m[e]) / (hi - lo), 0.0, 1.0) + m["fif"] + np.minimum(m["ae"], 2)
                )
            continue
        out[f"clf + {e} + min(AE, 2)"] = lambda m, e=e: m["clf"] + m[e] + np.minimum(m["ae"], 2)
        out[f"clf + fIF + {e} + min(AE, 2)"] = lambda m, e=e: m["clf"] + m["fif"] + m[e] + np.minimum(m["ae"], 2)
        out[f"clf + fIF + min({e}, 2) + min(AE, 2)"] = lambda m, e=e: (
            m["clf"] + m["fif"] + np.minimum(m[e], 2) + np.minimum(m["ae"], 2)
        )
        out[f"fIF + {e} + min(AE, 2)"] = lambda m, e=e: m["fif"] + m[e] + np.minimum(m["ae"], 2)
        for t in (1.0, 2.0):
            out[f"gate(clf | {e}, {t:g}) + {e} + min(AE, 2)"] = lambda m, e=e, t=t: (
                m["clf"] * np.clip(m[e] / t, 0.0, 1.0) + m[e] + np.minimum(m["ae"], 2)
            )
            out[f"gate(clf | fIF+{e}, {t:g}) + fIF + {e} + min(AE, 2)"] = lambda m, e=e, t=t: (
                m["clf"] * np.clip((m["fif"] + m[e]) / (2 * t), 0.0, 1.0) + m["fif"] + m[e] + np.minimum(m["ae"], 2)
            )
    return out


def judge(dump: np.lib.npyio.NpzFile, rule: Callable[[Members], np.ndarray]) -> np.ndarray:
    """Mean over the dump's folds of (TPR all, TPR held-out types, TPR variants, PR-AUC)."""
    folds = sorted({k.split("/")[0] for k in dump.files})
    rows = []
    for f in folds:
        prefix = next(k.rsplit("/", 2)[0] for k in dump.files if k.startswith(f"{f}/") and k.endswith("/clf/n"))
        names = {k.split("/")[-2] for k in dump.files if k.startswith(f"{prefix}/")}
        parts = {p: rule({m: dump[f"{prefix}/{m}/{p}"] for m in names}) for p in "nah"}
        n, a, h = parts["n"], parts["a"], parts["h"]
        y = np.r_[np.zeros(len(n)), np.ones(len(a) + len(h))]
        s = np.r_[n, a, h]
        yh = np.r_[np.zeros(len(n)), np.ones(len(h))]
        vm = dump[f"{f}/variant_mask"] if f"{f}/variant_mask" in dump.files else np.zeros(len(a), dtype=bool)
        tv = tpr_at_fpr(np.r_[np.zeros(len(n)), np.ones(vm.sum())], np.r_[n, a[vm]], 0.01) if vm.any() else np.nan
        rows.append(
            (
                tpr_at_fpr(y, s, 0.01),
                tpr_at_fpr(yh, np.r_[n, h], 0.01),
                tv,
                float(average_precision_score(y, s)),
            )
        )
    return np.mean(rows, axis=0)


def main() -> None:
    """Print every rule's figures on every dump file."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--only", default="", help="Print only rules whose name contains one of these (comma list).")
    args = ap.parse_args()
    dumps = [np.load(p) for p in args.dumps]
    base = {"clf", "ae", "fif", "iso"}
    extras = sorted({k.split("/")[-2] for k in dumps[0].files if k.count("/") == 3} - base)
    head = "  ".join(f"{'all/held/var (PR-AUC) ' + str(i):<30}" for i in range(len(dumps)))
    print(f"{'rule':<44} {head}")
    keep = [w for w in args.only.split(",") if w]
    for name, rule in (rules() | extra_rules(extras)).items():
        if keep and not any(w in name for w in keep):
            continue
        cols = "  ".join("{:.3f}/{:.3f}/{:.3f} ({:.3f})          ".format(*judge(d, rule)) for d in dumps)
        print(f"{name:<44} {cols}")


if __name__ == "__main__":
    main()
