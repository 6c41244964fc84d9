"""Why the hybrid's k-means trust gate did not carry to KDDTest+: how far test rows are from the training rows.

Run: ``.venv/bin/python benchmarks/nsl_kdd_trust_diagnostic.py [validation dumps ...]``.

Rebuilds the bench's split (``mamori bench nsl-kdd --institutions 10 --alpha 0.3 --seed 0``), its consortium
scaler and its trust model (:class:`~mamori.models.FederatedKMeans` of every institution's labelled training rows,
calibrated on the benign validation rows) without training any network, and prints the share of KDDTest+'s normal
rows, seen-type and unseen-type attacks whose trust surprise reaches 1, 2 and 3 (the gate passes the classifier's
surprise in full below 1 and drops it from 3 on). Optional ``nsl_kdd_validation.py --extra-members ood100`` dumps
print the same shares for the validation's judged rows. This reads KDDTest+ after the one test run of the default,
to explain that figure; it chooses nothing.
"""

from __future__ import annotations

import sys

import numpy as np

from mamori.bench import BenchConfig, load_dataset
from mamori.bench.runner import _members
from mamori.features import FeatureStats, Standardizer
from mamori.models import FederatedKMeans, ScoreStats


def _shares(s: np.ndarray) -> str:
    return "  ".join(f">= {t}: {np.mean(s >= t):.3f}" for t in (1, 2, 3))


def main() -> None:
    """Print the trust surprise's shares on KDDTest+ (and on validation dumps given as arguments)."""
    ds = load_dataset("nsl-kdd")
    members, _parts = _members(ds, BenchConfig(institutions=10, alpha=0.3, seed=0))
    scaler = Standardizer().fit_stats(FeatureStats.merge([FeatureStats.from_matrix(m.X_train) for m in members]))
    trust = FederatedKMeans(seed=0).fit([scaler.transform(m.X_train) for m in members])
    stats = ScoreStats.merge(
        ScoreStats.from_scores(trust.decision_function(scaler.transform(m.X_val[m.y_val == 0]))) for m in members
    )
    s = -np.log10(stats.tail_probability(trust.decision_function(scaler.transform(ds.X_test))))
    seen = (ds.y_test == 1) & np.isin(ds.category_test, list(set(ds.category_train)))
    for name, rows in (
        ("KDDTest+ normal rows", ds.y_test == 0),
        ("KDDTest+ seen-type attacks", seen),
        ("KDDTest+ unseen-type attacks", (ds.y_test == 1) & ~seen),
    ):
        print(f"{name:30s} {int(rows.sum()):6d} rows  trust surprise {_shares(s[rows])}")
    for path in sys.argv[1:]:
        dump = np.load(path)
        prefixes = sorted({k.rsplit("/", 2)[0] for k in dump.files if k.endswith("/ood100/n")})
        n = np.concatenate([dump[f"{p}/ood100/n"] for p in prefixes])
        a = np.concatenate([np.r_[dump[f"{p}/ood100/a"], dump[f"{p}/ood100/h"]] for p in prefixes])
        print(f"{path}: judged normal rows {_shares(n)}; judged attacks {_shares(a)}")


if __name__ == "__main__":
    main()
