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
the interval.
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
        Seeds the shadow splits and the ART attack's split.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attacks: tuple[str, ...] = ("loss", "lira")
    n_shadows: int = Field(default=8, ge=2)
    fprs: tuple[float, ...] = (0.001, 0.01, 0.1)
    seed: int = 0


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
    """

    attacks: dict[str, AttackResult]
    n_members: int
    n_nonmembers: int
    notes: list[str] = field(default_factory=list)

    def worst(self, fpr: float = 0.001) -> AttackResult:
        """The attack with the highest TPR at ``fpr`` (the audit's headline)."""
        return max(self.attacks.values(), key=lambda r: r.tpr_at_fpr.get(fpr, -1.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "attacks": {k: {**asdict(v),
                            "tpr_at_fpr": {str(f): t for f, t in v.tpr_at_fpr.items()},
                            "tpr_ci": {str(f): list(ci) for f, ci in v.tpr_ci.items()},
                            "members_flagged": {str(f): c for f, c in v.members_flagged.items()},
                            "nonmembers_flagged": {str(f): c for f, c in v.nonmembers_flagged.items()}}
                        for k, v in self.attacks.items()},
            "notes": list(self.notes),
        }


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


def _result(attack: str, is_member: np.ndarray, scores: np.ndarray, fprs: tuple[float, ...]) -> AttackResult:
    member = np.asarray(is_member, dtype=bool)
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=1e30, neginf=-1e30)
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
    )


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
    if "loss" in config.attacks:
        results["loss"] = _result("loss", member, _loss_attack(score, X, y), config.fprs)
    if "lira" in config.attacks:
        assert shadow_trainer is not None
        scores = _lira_attack(score, X, y, shadow_trainer, config.n_shadows, config.seed)
        results["lira"] = _result("lira", member, scores, config.fprs)
        notes.append(
            f"LiRA (online, fixed variance) with {config.n_shadows} shadow models trained on halves of the audit "
            "population; the shadows imitate the target only as well as shadow_trainer does."
        )
    if "art" in config.attacks:
        scores, truth = _art_attack(score, X, y, member, config.seed, groups)
        results["art"] = _result("art", truth, scores, config.fprs)
        notes.append("ART MembershipInferenceBlackBox (gradient boosting on prediction + label), cross-fitted on "
                     "two halves of the audit population (split by group when groups are given); every record "
                     "judged once by the half that did not fit on it.")
    for name, r in results.items():
        logger.info("membership inference (%s): AUC %.3f, TPR@0.1%%FPR %s, advantage %.3f", name, r.auc,
                    r.tpr_at_fpr.get(0.001), r.advantage)
    return MembershipAuditReport(attacks=results, n_members=int(member.sum()), n_nonmembers=n_out, notes=notes)
