"""The hardening loop: fine-tune with domain-constrained adversarial examples, compare evasion at the same FPR."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from mamori.assess.constrained import controlled_columns, mimicry_evasion
from mamori.errors import ConfigError

__all__ = ["harden_model"]

logger = logging.getLogger(__name__)


def _threshold_at(benign_logits: np.ndarray, fpr: float) -> float:
    """Smallest threshold whose false-positive rate on ``benign_logits`` is at most ``fpr``."""
    s = np.sort(benign_logits)[::-1]
    k = int(np.floor(fpr * len(s)))  # number of benign rows allowed above the threshold
    return float(s[k]) if k < len(s) else float(s[-1] - 1e-6)


def _mimic(X_attack: np.ndarray, X_benign: np.ndarray, columns: np.ndarray, efforts: Sequence[float],  # noqa: N803
           rng: np.random.Generator) -> np.ndarray:
    out = []
    for a in efforts:
        donors = X_benign[rng.integers(0, len(X_benign), size=len(X_attack))]
        X = X_attack.copy()  # noqa: N806
        X[:, columns] = (1.0 - a) * X_attack[:, columns] + a * donors[:, columns]
        out.append(X)
    return np.concatenate(out)


def harden_model(
    model: Any,
    X: np.ndarray,  # noqa: N803
    y: np.ndarray,
    *,
    efforts: Sequence[float] = (0.5, 0.75, 1.0),
    epochs: int = 3,
    max_adversarial: int = 5000,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune a scoring model on domain-constrained adversarial examples and measure evasion before and after.

    The rows are split (seeded, half and half) into a hardening part and an evaluation part. Attack rows of the
    hardening part are turned into mimicry examples (:func:`~mamori.assess.mimicry_evasion`'s construction on the
    attacker-controlled columns, at each effort), labelled as attacks and added to that part; the network is
    fine-tuned on it from its current weights. The new threshold gives the same false-positive rate on the
    hardening part's benign rows as the old model had there, so the comparison is at an unchanged FPR.
    Evasion is then measured on the evaluation part, which neither step saw.

    Parameters
    ----------
    model : ScoringModel
        An attack-classifier bundle.
    X : numpy.ndarray
        Shape ``(n, d)``: raw feature rows (as :func:`mamori.features.extract_features` gives them).
    y : numpy.ndarray
        Shape ``(n,)``: 0 benign, 1 attack.
    efforts : sequence of float, default=(0.5, 0.75, 1.0)
        Mimicry efforts of the training examples and of the evaluation.
    epochs : int, default=3
        Fine-tuning epochs.
    max_adversarial : int, default=5000
        Cap on attack rows turned into adversarial examples (seeded sample).
    seed : int, default=0
        Seeds the split, the examples and the fine-tuning.

    Returns
    -------
    hardened : ScoringModel
        The fine-tuned bundle (new weights and threshold, ``metadata["hardened"]``).
    report : dict
        ``before`` / ``after``: evasion per effort and the evaluation FPR; ``threshold_before`` / ``_after``;
        ``n_adversarial``; ``n_eval_attacks``.

    Raises
    ------
    ConfigError
        If either part lacks benign or attack rows, or the model is not an attack classifier.
    """
    if model.kind != "attack-classifier":
        raise ConfigError(f"harden_model: only 'attack-classifier' bundles can be hardened; got {model.kind!r}.")
    rng = np.random.default_rng(seed)
    in_train = rng.random(len(y)) < 0.5
    parts = {"hardening": in_train, "evaluation": ~in_train}
    for name, sel in parts.items():
        if not (y[sel] == 1).any() or not (y[sel] == 0).any():
            raise ConfigError(f"harden_model: the {name} half needs benign and attack rows; give more events.")
    cols = controlled_columns(model.spec)
    union = np.unique(np.concatenate(list(cols.values())))
    std = model.standardizer()
    before = model.detector()
    thr0 = float(model.threshold)

    X_tr, y_tr = X[in_train], y[in_train]  # noqa: N806
    X_ev, y_ev = X[~in_train], y[~in_train]  # noqa: N806
    fpr_tr = float((before.decision_function(std.transform(X_tr[y_tr == 0])) > thr0).mean())

    attacks = X_tr[y_tr == 1]
    if len(attacks) > max_adversarial:
        attacks = attacks[rng.choice(len(attacks), size=max_adversarial, replace=False)]
    X_adv = _mimic(attacks, X_tr[y_tr == 0], union, efforts, rng)  # noqa: N806
    X_fit = std.transform(np.concatenate([X_tr, X_adv])).astype(np.float32)  # noqa: N806
    y_fit = np.concatenate([y_tr, np.ones(len(X_adv), dtype=y_tr.dtype)])
    after = model.detector()
    after.set_params(seed=seed)
    after.fit_local(X_fit, y_fit, epochs=epochs)
    after.network_.eval()
    thr1 = _threshold_at(after.decision_function(std.transform(X_tr[y_tr == 0])), fpr_tr)

    def measure(detector: Any, thr: float) -> dict[str, Any]:
        def score(rows: np.ndarray) -> np.ndarray:
            return detector.decision_function(std.transform(rows).astype(np.float32))

        logits = score(X_ev)
        alerted = X_ev[(y_ev == 1) & (logits > thr)]
        out: dict[str, Any] = {
            "fpr": float((logits[y_ev == 0] > thr).mean()),
            "recall": float((logits[y_ev == 1] > thr).mean()),
            "n_alerted": int(len(alerted)),
        }
        # evasion counted over every evaluation attack: not alerted to start with, or evaded by mimicry
        rows = mimicry_evasion(score, alerted, X_ev[y_ev == 0], thr, union, efforts, seed=seed) if len(alerted) else []
        n_att = int((y_ev == 1).sum())
        out["evasion"] = [
            {"effort": r["effort"], "success_rate": r["success_rate"],
             "attacks_missed": float((n_att - len(alerted) + r["success_rate"] * len(alerted)) / n_att)}
            for r in rows
        ]
        return out

    report = {
        "before": measure(before, thr0),
        "after": measure(after, thr1),
        "threshold_before": thr0,
        "threshold_after": thr1,
        "hardening_fpr": fpr_tr,
        "n_adversarial": int(len(X_adv)),
        "n_eval_attacks": int((y_ev == 1).sum()),
        "epochs": int(epochs),
        "efforts": [float(a) for a in efforts],
    }
    hardened = model.with_weights(after.get_weights(), metadata={"hardened": {
        "from_sha256": model.sha256, "n_adversarial": int(len(X_adv)), "epochs": int(epochs)}})
    hardened = dataclasses.replace(hardened, threshold=thr1)
    logger.info("harden_model: evasion at full effort %.3f -> %.3f, FPR %.4f -> %.4f",
                report["before"]["evasion"][-1]["success_rate"] if report["before"]["evasion"] else float("nan"),
                report["after"]["evasion"][-1]["success_rate"] if report["after"]["evasion"] else float("nan"),
                report["before"]["fpr"], report["after"]["fpr"])
    return hardened, report
