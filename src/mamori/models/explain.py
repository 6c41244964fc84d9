"""Explanations: which features pushed a score up."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mamori.errors import SchemaError
from mamori.features import FeatureSpec
from mamori.models.autoencoder import AutoencoderDetector
from mamori.models.base import check_matrix, torch_threads
from mamori.models.classifier import AttackClassifier

__all__ = ["explain", "Explanation", "FeatureContribution"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureContribution:
    """One feature's push on a score.

    Parameters
    ----------
    name : str
        Feature name from the :class:`~mamori.features.FeatureSpec`.
    group : str
        Its group (``ip``, ``lexical``, ...).
    value : float
        The (standardised) input value; 0 is the consortium mean.
    contribution : float
        How much it raised the score (logit units for the classifier, squared-error share for the autoencoder).
    """

    name: str
    group: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """The score of one row and the features that raised it most, largest first."""

    score: float
    top: tuple[FeatureContribution, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "score": self.score,
            "top": [
                {"name": c.name, "group": c.group, "value": c.value, "contribution": c.contribution} for c in self.top
            ],
        }


def _integrated_gradients(model: AttackClassifier, X: np.ndarray, steps: int) -> np.ndarray:
    """Integrated gradients of the logit from the all-zero baseline (the consortium mean)."""
    network = model.network_
    network.eval()
    x = torch.from_numpy(X)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    total = torch.zeros_like(x)
    with torch_threads(model.n_threads):
        for a in alphas:
            xi = (a * x).requires_grad_(True)
            out = network(xi).sum()
            (grad,) = torch.autograd.grad(out, xi)
            total += grad
    return (x * total / steps).numpy().astype(np.float64)


def _occlusion(model: Any, X: np.ndarray) -> np.ndarray:
    """Score drop when each feature is set to 0 (the consortium mean); for any model with decision_function."""
    base = np.asarray(model.decision_function(X), dtype=np.float64)
    out = np.zeros(X.shape, dtype=np.float64)
    for j in range(X.shape[1]):
        Xj = X.copy()
        Xj[:, j] = 0.0
        out[:, j] = base - np.asarray(model.decision_function(Xj), dtype=np.float64)
    return out


def explain(model: Any, X_rows: Any, spec: FeatureSpec, top_k: int = 5, steps: int = 32) -> list[Explanation]:
    """Name the features that pushed each row's score up.

    Parameters
    ----------
    model : AttackClassifier or AutoencoderDetector or estimator with decision_function
        A fitted detector.
    X_rows : array-like
        Shape ``(n_rows, n_features)``, standardised as the model saw them.
    spec : FeatureSpec
        Names the columns.
    top_k : int, default=5
        Number of features per row.
    steps : int, default=32
        Integration steps for the classifier.

    Returns
    -------
    list of Explanation
        One per row: its score and up to ``top_k`` features with a positive contribution, largest first.

    Notes
    -----
    - :class:`AttackClassifier`: integrated gradients of the logit along the straight path from the baseline
      ``0`` (after consortium-wide standardisation, the consortium's average event) to the row. The
      contributions add up to ``logit(row) - logit(baseline)``, up to the integration error.
    - :class:`AutoencoderDetector`: each feature's squared reconstruction error divided by the width; these
      add up exactly to the anomaly score.
    - Anything else with ``decision_function``: occlusion, the score drop when the feature is set to 0.
    """
    X = check_matrix(X_rows, "explain")
    if X.shape[1] != spec.n_features:
        raise SchemaError(f"explain: X_rows has {X.shape[1]} columns but the spec names {spec.n_features}.")
    if isinstance(model, AttackClassifier):
        scores = model.decision_function(X)
        contrib = _integrated_gradients(model, X, steps)
    elif isinstance(model, AutoencoderDetector):
        errors = model.reconstruction_errors(X)
        contrib = errors / X.shape[1]
        scores = contrib.sum(axis=1)
    else:
        scores = np.asarray(model.decision_function(X), dtype=np.float64)
        contrib = _occlusion(model, X)
    out: list[Explanation] = []
    for i in range(X.shape[0]):
        order = np.argsort(-contrib[i], kind="stable")
        top = [
            FeatureContribution(spec.names[j], spec.groups[j], float(X[i, j]), float(contrib[i, j]))
            for j in order[:top_k]
            if contrib[i, j] > 0
        ]
        out.append(Explanation(float(scores[i]), tuple(top)))
    return out
