"""Privacy leakage audit: membership inference against a trained model.

Given a model's scoring function and an *audit population* - records with known membership (rows the
model was trained on, and comparable rows it never saw) - the audit runs attacks that try to tell the
two apart and reports how well they do:

* ``loss``: the classic threshold attack (Yeom et al. 2018): a record is a member when the model's
  loss on it is low. No shadow models.
* ``lira``: the likelihood-ratio attack (Carlini et al. 2022, online variant): shadow models are
  trained on random halves of the audit population; for every record the attack fits one Gaussian to
  the label-correct logit of the shadows that trained on it (IN) and one to those that did not (OUT),
  and scores the target's logit by the log-likelihood ratio. Per-record calibration is what makes it
  strong at low false-positive rates.
* ``art``: the Adversarial Robustness Toolbox's ``MembershipInferenceBlackBox`` (a gradient-boosted
  attack model on the prediction and label), cross-fitted: fitted on one half of the audit population
  (split by customer) and judged on the other, then the other way round, so every record is judged once
  by a model that never saw it.

Each attack reports ROC-AUC, TPR at fixed FPRs (0.1 %, 1 %, 10 %) with a Clopper-Pearson interval and the
counts behind it, and the membership advantage ``max(TPR - FPR)``. Chance is AUC 0.5 and TPR = FPR. At
0.1 % FPR the threshold sits on the ``floor(0.001 * non-members)`` highest-scoring non-members: with 2,000
non-members that is 2 records, and the TPR is mostly noise - use tens of thousands of records and read
the interval. Two intervals are reported: Clopper-Pearson over the members judged (``tpr_ci``: the members'
sampling only, at a fixed threshold) and a bootstrap over groups (``tpr_bootstrap_ci``: customers are
resampled and the threshold is re-chosen on each resample, so the uncertainty of a threshold resting on a
handful of non-members is included). :func:`pool_audit_runs` pools the scores of several runs of a randomised
attack (ART's split) into one estimate, with the same group bootstrap.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score, roc_curve

from mamori.errors import ConfigError

__all__ = [
    "AttackResult",
    "MembershipAuditConfig",
    "MembershipAuditReport",
    "ScoreFunction",
    "ShadowTrainer",
    "audit_membership",
    "clopper_pearson",
    "pool_audit_runs",
    "tpr_at_fpr",
]

logger = logging.getLogger(__name__)

#: Returns one logit per row of ``X`` (higher = attack); the audited model's ``decision_function``.
ScoreFunction = Callable[[np.ndarray], np.ndarray]
#: ``shadow_trainer(X, y, seed)`` trains a shadow model like the target and returns its score function.
ShadowTrainer = Callable[[np.ndarray, np.ndarray, int], ScoreFunction]

_ATTACKS = ("loss", "lira", "art")


class MembershipAuditConfig(BaseModel):
    """Settings of a membership-inference audit.

    Parameters
    ----------
    attacks : tuple of {"loss", "lira", "art"}, default=("loss", "lira")
        Attacks to run; ``"lira"`` needs a shadow trainer.
    n_shadows : int, default=8
        Shadow models for LiRA (each trains on a random half; about half are IN for each record).
    fprs : tuple of float, default=(0.001, 0.01, 0.1)
        False-positive rates at which to report the true-positive rate.
    seed : int, default=0
        Seeds the shadow splits, the ART attack's split and the bootstrap.
    n_bootstrap : int, default=1000
        Bootstrap resamples (of groups, or of records without groups) behind ``tpr_bootstrap_ci``; 0 skips it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attacks: tuple[str, ...] = ("loss", "lira")
    n_shadows: int = Field(default=8, ge=2)
    fprs: tuple[float, ...] = (0.001, 0.01, 0.1)
    seed: int = 0
    n_bootstrap: int = Field(default=1000, ge=0)


@dataclass(frozen=True)
class AttackResult:
    """How well one attack separates members from non-members.

    Attributes
    ----------
    attack : str
        ``"loss"``, ``"lira"`` or ``"art"``.
    auc : float
        ROC-AUC of the attack's member scores (0.5 = chance).
    tpr_at_fpr : dict of float to float
        True-positive rate at each requested false-positive rate.
    advantage : float
        ``max(TPR - FPR)`` over all thresholds (0 = chance, 1 = perfect).
    n_members, n_nonmembers : int
        Records judged.
    tpr_ci : dict of float to (float, float)
        95 % Clopper-Pearson interval of each TPR (members flagged out of ``n_members``; the threshold's own
        uncertainty is not included).
    members_flagged, nonmembers_flagged : dict of float to int
        At each FPR: members and non-members at or above the threshold (``nonmembers_flagged[f] <= f *
        n_nonmembers``).
    tpr_bootstrap_ci : dict of float to (float, float)
        95 % percentile-bootstrap interval of each TPR, resampling groups (customers) with replacement and
        re-choosing the threshold on every resample: it covers the threshold's uncertainty too. Empty when
        the bootstrap was skipped.
    runs : int
        Runs of the attack pooled into this result (:func:`pool_audit_runs`); 1 for a single run. Pooled
        counts are judgements (a record judged once per run), not distinct records.
    """

    attack: str
    auc: float
    tpr_at_fpr: dict[float, float]
    advantage: float
    n_members: int
    n_nonmembers: int
    tpr_ci: dict[float, tuple[float, float]] = field(default_factory=dict)
    members_flagged: dict[float, int] = field(default_factory=dict)
    nonmembers_flagged: dict[float, int] = field(default_factory=dict)
    tpr_bootstrap_ci: dict[float, tuple[float, float]] = field(default_factory=dict)
    runs: int = 1


@dataclass(frozen=True)
class MembershipAuditReport:
    """The outcome of :func:`audit_membership`.

    Attributes
    ----------
    attacks : dict of str to AttackResult
        One result per attack run.
    n_members, n_nonmembers : int
        Size of the audit population.
    notes : list of str
        What the figures can and cannot be taken to mean.
    scores : dict of str to numpy.ndarray
        Each attack's score per record of the audit population (in its order; not in :meth:`to_dict`).
    is_member, groups : numpy.ndarray or None
        The population's membership truth and groups (for :func:`pool_audit_runs`; not in :meth:`to_dict`).
    """

    attacks: dict[str, AttackResult]
    n_members: int
    n_nonmembers: int
    notes: list[str] = field(default_factory=list)
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    is_member: np.ndarray | None = field(default=None, repr=False)
    groups: np.ndarray | None = field(default=None, repr=False)

    def worst(self, fpr: float = 0.001) -> AttackResult:
        """The attack with the highest TPR at ``fpr`` (the audit's headline)."""
        return max(self.attacks.values(), key=lambda r: r.tpr_at_fpr.get(fpr, -1.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "attacks": {k: _result_dict(v) for k, v in self.attacks.items()},
            "notes": list(self.notes),
        }


def _result_dict(r: AttackResult) -> dict[str, Any]:
    """An :class:`AttackResult` as a JSON-ready dict (FPR keys as strings)."""
    return {**asdict(r),
            "tpr_at_fpr": {str(f): t for f, t in r.tpr_at_fpr.items()},
            "tpr_ci": {str(f): list(ci) for f, ci in r.tpr_ci.items()},
            "tpr_bootstrap_ci": {str(f): list(ci) for f, ci in r.tpr_bootstrap_ci.items()},
            "members_flagged": {str(f): c for f, c in r.members_flagged.items()},
            "nonmembers_flagged": {str(f): c for f, c in r.nonmembers_flagged.items()}}


def tpr_at_fpr(is_member: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """True-positive rate of a threshold that flags at most ``fpr`` of the non-members.

    Parameters
    ----------
    is_member : numpy.ndarray of bool, shape (n,)
        Membership truth.
    scores : numpy.ndarray of float, shape (n,)
        Attack scores (higher = member).
    fpr : float
        Allowed false-positive rate.

    Returns
    -------
    float
        The largest TPR over thresholds whose FPR is <= ``fpr`` (0 if none).
    """
    fprs, tprs, _ = roc_curve(np.asarray(is_member, dtype=bool), np.asarray(scores, dtype=np.float64))
    ok = fprs <= fpr + 1e-12
    return float(tprs[ok].max()) if ok.any() else 0.0


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) confidence interval of a proportion ``k / n``.

    Parameters
    ----------
    k : int
        Successes (e.g. members flagged), ``0 <= k <= n``.
    n : int
        Trials (e.g. members judged), > 0.
    confidence : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    (float, float)
        Lower and upper bound.

    Raises
    ------
    ConfigError
        If ``n < 1``, ``k`` is outside ``[0, n]`` or ``confidence`` is outside (0, 1).
    """
    from scipy.stats import beta

    if n < 1 or not 0 <= k <= n or not 0 < confidence < 1:
        raise ConfigError(f"clopper_pearson: need n >= 1, 0 <= k <= n, 0 < confidence < 1; got k={k}, n={n}, "
                          f"confidence={confidence}.")
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def _result(
    attack: str,
    is_member: np.ndarray,
    scores: np.ndarray,
    fprs: tuple[float, ...],
    *,
    groups: np.ndarray | None = None,
    n_bootstrap: int = 0,
    seed: int = 0,
    runs: int = 1,
) -> AttackResult:
    member = np.asarray(is_member, dtype=bool)
    s = _clean(scores)
    f, t, thresholds = roc_curve(member, s)
    n_in, n_out = int(member.sum()), int((~member).sum())
    tprs: dict[float, float] = {}
    cis: dict[float, tuple[float, float]] = {}
    flagged_in: dict[float, int] = {}
    flagged_out: dict[float, int] = {}
    for p in fprs:
        ok = np.flatnonzero(f <= p + 1e-12)
        best = int(ok[np.argmax(t[ok])])  # the operating point tpr_at_fpr reports
        flagged_in[p] = int(round(t[best] * n_in))
        flagged_out[p] = int(round(f[best] * n_out))
        tprs[p] = float(t[best])
        cis[p] = clopper_pearson(flagged_in[p], n_in)
    return AttackResult(
        attack=attack,
        auc=float(roc_auc_score(member, s)),
        tpr_at_fpr=tprs,
        advantage=float(np.max(t - f)),
        n_members=n_in,
        n_nonmembers=n_out,
        tpr_ci=cis,
        members_flagged=flagged_in,
        nonmembers_flagged=flagged_out,
        tpr_bootstrap_ci=_bootstrap_tpr(member, s, fprs, groups, n_bootstrap, seed) if n_bootstrap else {},
        runs=runs,
    )


def _clean(scores: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=1e30, neginf=-1e30)


class _WeightedTPR:
    """TPR at FPR <= ``fpr`` with integer record weights (a bootstrap resample), in O(n) per call.

    The best threshold flags every member scoring strictly above the highest non-member score it must leave
    out - the operating point :func:`tpr_at_fpr` picks, with ties among non-members kept together.
    """

    def __init__(self, member: np.ndarray, scores: np.ndarray) -> None:
        out = np.flatnonzero(~member)
        out = out[np.argsort(-scores[out], kind="stable")]
        values = scores[out]
        self.starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])  # runs of tied non-member scores
        self.levels = values[self.starts]
        self.out = out
        inside = np.flatnonzero(member)
        self.inside = inside[np.argsort(-scores[inside], kind="stable")]
        self.inside_desc = scores[self.inside]

    def __call__(self, weights: np.ndarray, fpr: float) -> float:
        w_out = np.add.reduceat(weights[self.out], self.starts)
        allowed = fpr * float(w_out.sum()) + 1e-9
        j = int(np.searchsorted(np.cumsum(w_out), allowed, side="right"))  # tie runs that fit under the FPR
        w_in = weights[self.inside]
        total_in = float(w_in.sum())
        if total_in == 0:
            return 0.0
        if j >= len(self.levels):
            return 1.0
        above = int(np.searchsorted(-self.inside_desc, -self.levels[j], side="left"))  # members > level j
        return float(w_in[:above].sum()) / total_in


def _bootstrap_tpr(
    member: np.ndarray,
    scores: np.ndarray,
    fprs: tuple[float, ...],
    groups: np.ndarray | None,
    n_bootstrap: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[float, tuple[float, float]]:
    """Percentile-bootstrap interval of TPR at each FPR, resampling groups and re-choosing the threshold."""
    rng = np.random.default_rng(seed + 7919)
    if groups is None:
        index = np.arange(len(member))
    else:
        _, index = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(index.max()) + 1
    tpr = _WeightedTPR(member, scores)
    draws = np.empty((n_bootstrap, len(fprs)))
    for b in range(n_bootstrap):
        counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        weights = counts[index].astype(np.float64)
        draws[b] = [tpr(weights, p) for p in fprs]
    alpha = (1.0 - confidence) / 2
    return {p: (float(np.quantile(draws[:, i], alpha)), float(np.quantile(draws[:, i], 1 - alpha)))
            for i, p in enumerate(fprs)}


def pool_audit_runs(
    reports: list[MembershipAuditReport],
    attack: str,
    *,
    fprs: tuple[float, ...] = (0.001, 0.01, 0.1),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> AttackResult:
    """Pool several runs of one attack on the same audit population into one estimate.

    A randomised attack (ART's cross-fitting split, LiRA's shadows) gives a different TPR at 0.1 % FPR on
    every run; the largest of a few runs is biased upwards, and each rests on a threshold set by a handful of
    non-members. Pooling judges every record once per run (the attack that picks one of the runs at random
    for each record), so the threshold rests on ``runs`` times as many non-member judgements. The
    interval is a bootstrap over groups that keeps all of a group's judgements (every run, every row)
    together, so repeated judgements of one record are not counted as independent evidence.

    The runs may also be audits of several *target models* trained alike (different training seeds) on the
    same population: pooling their judgements before choosing one threshold estimates the TPR of the training
    procedure, where averaging per-model TPRs (each on a threshold over a few non-members) and then taking the
    largest over attacks reads above chance when nothing leaks (docs/privacy.md, "null audit").

    Parameters
    ----------
    reports : list of MembershipAuditReport
        Audits of the same population (same records, membership and groups, in the same order), each with
        ``attack`` among its attacks.
    attack : str
        ``"loss"``, ``"lira"`` or ``"art"``.
    fprs : tuple of float, default=(0.001, 0.01, 0.1)
        False-positive rates to report.
    n_bootstrap : int, default=1000
        Bootstrap resamples behind ``tpr_bootstrap_ci`` (0 skips it).
    seed : int, default=0
        Seeds the bootstrap.

    Returns
    -------
    AttackResult
        Over all runs' judgements: ``runs = len(reports)``; ``n_members``/``n_nonmembers``, the flagged
        counts and ``tpr_ci`` (Clopper-Pearson, which treats the judgements as independent - too narrow
        here) count judgements; read ``tpr_bootstrap_ci``.

    Raises
    ------
    ConfigError
        If no report is given, one lacks the attack or its scores, or the populations differ.
    """
    if not reports:
        raise ConfigError("pool_audit_runs: give at least one MembershipAuditReport.")
    first = reports[0]
    for r in reports:
        if attack not in r.scores or r.is_member is None:
            raise ConfigError(f"pool_audit_runs: a report has no scores for attack {attack!r}; pass the reports "
                              "audit_membership returned.")
        if not np.array_equal(r.is_member, first.is_member) or (
                (r.groups is None) != (first.groups is None)
                or (r.groups is not None and not np.array_equal(r.groups, first.groups))):
            raise ConfigError("pool_audit_runs: the reports audit different populations; pool runs of one population.")
    assert first.is_member is not None
    member = np.concatenate([first.is_member] * len(reports))
    scores = np.concatenate([r.scores[attack] for r in reports])
    n = len(first.is_member)
    groups = np.concatenate([first.groups if first.groups is not None else np.arange(n)] * len(reports))
    return _result(attack, member, scores, fprs, groups=groups, n_bootstrap=n_bootstrap, seed=seed,
                   runs=len(reports))


def _label_logit(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The logit of the true label: z for attacks (y=1), -z for benign rows (LiRA's scaled confidence)."""
    z = np.asarray(scores, dtype=np.float64).reshape(-1)
    return np.where(np.asarray(y).reshape(-1) == 1, z, -z)


def _loss_attack(score: ScoreFunction, X: np.ndarray, y: np.ndarray) -> np.ndarray:  # noqa: N803
    z = _label_logit(score(X), y)
    return -np.logaddexp(0.0, -z)  # minus the binary cross-entropy: low loss = member


def _lira_attack(
    score: ScoreFunction,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    shadow_trainer: ShadowTrainer,
    n_shadows: int,
    seed: int,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(X)
    target = _label_logit(score(X), y)
    conf = np.empty((n_shadows, n))
    inside = np.zeros((n_shadows, n), dtype=bool)
    # balanced IN/OUT: each record is IN for exactly half the shadows (Carlini et al.'s sampling)
    order = np.argsort(rng.random((n_shadows, n)), axis=0)
    inside = order < n_shadows // 2
    for k in range(n_shadows):
        idx = np.flatnonzero(inside[k])
        if len(np.unique(y[idx])) < 2:
            raise ConfigError("audit_membership: a shadow split holds a single class; give more records of each class.")
        shadow = shadow_trainer(X[idx], y[idx], seed * 1000 + k)
        conf[k] = _label_logit(shadow(X), y)
        logger.info("LiRA shadow %d/%d trained on %d records", k + 1, n_shadows, len(idx))
    mu_in = np.nanmean(np.where(inside, conf, np.nan), axis=0)
    mu_out = np.nanmean(np.where(~inside, conf, np.nan), axis=0)
    # a global variance per side is more stable with few shadows (Carlini et al., "fixed variance")
    var_in = max(float(np.nanvar(np.where(inside, conf - mu_in, np.nan))), 1e-6)
    var_out = max(float(np.nanvar(np.where(~inside, conf - mu_out, np.nan))), 1e-6)
    log_in = -0.5 * (target - mu_in) ** 2 / var_in - 0.5 * math.log(var_in)
    log_out = -0.5 * (target - mu_out) ** 2 / var_out - 0.5 * math.log(var_out)
    return np.asarray(log_in - log_out)


def _art_attack(
    score: ScoreFunction,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    is_member: np.ndarray,
    seed: int,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    def predict(x: np.ndarray) -> np.ndarray:
        z = np.asarray(score(np.asarray(x, dtype=np.float32)), dtype=np.float64)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return np.stack([1.0 - p, p], axis=1)

    rng = np.random.default_rng(seed)
    if groups is None:
        half = rng.random(len(X)) < 0.5
    else:  # split by group: rows of one customer (often near-identical) never sit on both sides
        _, index = np.unique(groups, return_inverse=True)
        half = (rng.random(int(index.max()) + 1) < 0.5)[index]
    y_onehot = np.eye(2, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    scores = np.empty(len(X), dtype=np.float64)
    # cross-fitting: fit on one half, judge the other, then swap - every record is judged once, by an attack
    # model that never saw it (twice the records of a single split behind each TPR)
    for fit_side in (half, ~half):
        members, nonmembers = is_member & fit_side, ~is_member & fit_side
        test = ~fit_side
        if not members.any() or not nonmembers.any() or not test.any():
            raise ConfigError("audit_membership: the ART attack needs members and non-members in both halves of "
                              "the audit population; give more records (or more groups).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classifier = BlackBoxClassifier(predict, input_shape=(X.shape[1],), nb_classes=2)
            attack = MembershipInferenceBlackBox(classifier, attack_model_type="gb", input_type="prediction")
            attack.fit(X[members], y_onehot[members], X[nonmembers], y_onehot[nonmembers])
            scores[test] = attack.infer(X[test], y_onehot[test], probabilities=True).reshape(-1)
    return scores, np.asarray(is_member, dtype=bool)


def audit_membership(
    score: ScoreFunction,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    is_member: np.ndarray,
    *,
    shadow_trainer: ShadowTrainer | None = None,
    config: MembershipAuditConfig | None = None,
    groups: np.ndarray | None = None,
) -> MembershipAuditReport:
    """Run membership-inference attacks against a trained model and report their success.

    Parameters
    ----------
    score : callable
        The audited model's logits, e.g. ``model.decision_function``.
    X : numpy.ndarray of shape (n, n_features)
        The audit population: records the model trained on and comparable records it never saw,
        prepared exactly as for the model (same scaling).
    y : numpy.ndarray of shape (n,)
        Their binary labels.
    is_member : numpy.ndarray of bool, shape (n,)
        True for the records in the model's training data.
    shadow_trainer : callable or None, default=None
        ``shadow_trainer(X, y, seed) -> score function``: trains a model the way the target was trained
        (architecture, epochs, DP or not). Needed for ``"lira"``.
    config : MembershipAuditConfig or None, default=None
        Attacks, shadows, FPRs, seed; None uses ``MembershipAuditConfig()``.
    groups : numpy.ndarray of shape (n,) or None, default=None
        Privacy unit (customer) of each record. The ART attack is fitted on one half of the groups and
        judged on the other; splitting rows instead lets it recognise a customer's near-identical rows
        on both sides, which measures the data, not the model.

    Returns
    -------
    MembershipAuditReport
        Per attack: AUC, TPR at each FPR, advantage.

    Raises
    ------
    ConfigError
        If the inputs disagree in length, a side of the population is empty, an attack is unknown, or
        ``"lira"`` is asked for without a shadow trainer.

    Notes
    -----
    TPR at 0.1 % FPR is only resolvable with at least ~1,000 non-members (the audit warns below that).
    The audit measures what these attacks achieve; a low figure is evidence, not proof, of privacy -
    the differential-privacy guarantee is the proof, the audit is the check that the implementation
    and the parameters behave as the accounting says.
    """
    config = config if config is not None else MembershipAuditConfig()
    X = np.asarray(X, dtype=np.float32)  # noqa: N806
    y = np.asarray(y).reshape(-1).astype(np.int64)
    member = np.asarray(is_member, dtype=bool).reshape(-1)
    if not (len(X) == len(y) == len(member)):
        raise ConfigError(
            f"audit_membership: X has {len(X)} rows, y {len(y)}, is_member {len(member)}; they must match."
        )
    if member.all() or not member.any():
        raise ConfigError("audit_membership: the audit population needs both members and non-members.")
    unknown = set(config.attacks) - set(_ATTACKS)
    if unknown:
        raise ConfigError(f"audit_membership: unknown attack(s) {sorted(unknown)}; choose from {_ATTACKS}.")
    if "lira" in config.attacks and shadow_trainer is None:
        raise ConfigError("audit_membership: the 'lira' attack needs a shadow_trainer (train like the target).")
    notes: list[str] = []
    n_out = int((~member).sum())
    smallest = min(config.fprs)
    if n_out * smallest < 1:
        notes.append(
            f"only {n_out} non-members: TPR at FPR {smallest:g} cannot be resolved "
            f"(needs >= {math.ceil(1 / smallest)})."
        )
    elif n_out * smallest < 10:
        notes.append(
            f"{n_out} non-members: the threshold at FPR {smallest:g} rests on {math.floor(n_out * smallest)} "
            f"non-member(s); TPR there is noisy - read its interval (tpr_ci), or enlarge the audit population "
            f"(>= {math.ceil(10 / smallest):,} non-members for 10)."
        )
    results: dict[str, AttackResult] = {}
    raw: dict[str, np.ndarray] = {}
    boot = {"groups": groups, "n_bootstrap": config.n_bootstrap, "seed": config.seed}
    if "loss" in config.attacks:
        raw["loss"] = _clean(_loss_attack(score, X, y))
        results["loss"] = _result("loss", member, raw["loss"], config.fprs, **boot)
    if "lira" in config.attacks:
        assert shadow_trainer is not None
        raw["lira"] = _clean(_lira_attack(score, X, y, shadow_trainer, config.n_shadows, config.seed))
        results["lira"] = _result("lira", member, raw["lira"], config.fprs, **boot)
        notes.append(
            f"LiRA (online, fixed variance) with {config.n_shadows} shadow models trained on halves of the audit "
            "population; the shadows imitate the target only as well as shadow_trainer does."
        )
    if "art" in config.attacks:
        scores, truth = _art_attack(score, X, y, member, config.seed, groups)
        raw["art"] = _clean(scores)
        results["art"] = _result("art", truth, raw["art"], config.fprs, **boot)
        notes.append("ART MembershipInferenceBlackBox (gradient boosting on prediction + label), cross-fitted on "
                     "two halves of the audit population (split by group when groups are given); every record "
                     "judged once by the half that did not fit on it.")
    for name, r in results.items():
        logger.info("membership inference (%s): AUC %.3f, TPR@0.1%%FPR %s, advantage %.3f", name, r.auc,
                    r.tpr_at_fpr.get(0.001), r.advantage)
    return MembershipAuditReport(attacks=results, n_members=int(member.sum()), n_nonmembers=n_out, notes=notes,
                                 scores=raw, is_member=member,
                                 groups=None if groups is None else np.asarray(groups).reshape(-1))
