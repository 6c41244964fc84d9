"""The supervised attack classifier: an MLP trained on attack/benign labels."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from mamori.errors import ConfigError
from mamori.models.base import TorchDetector

__all__ = ["AttackClassifier"]

logger = logging.getLogger(__name__)


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class AttackClassifier(TorchDetector):
    """Binary attack-vs-benign MLP; ``decision_function`` returns logits (rank by these, not probabilities).

    Parameters
    ----------
    hidden_layers : tuple of int, default=(64, 32)
        Widths of the hidden layers (ReLU).
    dropout : float, default=0.1
        Dropout after each hidden layer.
    learning_rate : float, default=1e-3
        Learning rate of the optimiser.
    weight_decay : float, default=1e-5
        Weight decay (L2) of the optimiser.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of each ``fit``/``fit_local`` call. In federated rounds the optimiser restarts every round;
        Adam's first steps then move every weight by about ``learning_rate`` whatever its gradient, so a member
        holding one class keeps pulling the model towards it even once its rows are classified well. Plain SGD
        steps shrink with the gradient (less client drift) and suit federated members of skewed consortia.
    momentum : float, default=0.0
        SGD momentum (``optimizer="sgd"`` only).
    epochs : int, default=10
        Epochs of ``fit`` (and default local epochs of ``fit_local``).
    batch_size : int, default=256
        Mini-batch size.
    pos_weight : float or "balanced" or None, default="balanced"
        Weight of the attack class in the loss. ``"balanced"`` uses ``n_benign / n_attack`` of the training rows,
        capped at ``max_pos_weight``; None means 1.
    max_pos_weight : float, default=100.0
        Cap of the balanced weight.
    seed : int, default=0
        Seeds weight initialisation, shuffling and dropout. Same seed, same data, same results.
    n_threads : int or None, default=1
        PyTorch threads while training and scoring (restored afterwards); 1 is fastest for these small
        networks on a shared machine and keeps results bit-identical. None leaves PyTorch's setting alone.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained network.
    n_features_in_ : int
        Input width.
    classes_ : numpy.ndarray
        ``[0, 1]``.
    pos_weight_ : float
        The attack-class weight used in the last training call.
    n_samples_seen_ : int
        Rows used by the last ``fit``/``fit_local`` call.
    loss_history_ : list of float
        Mean loss per epoch, over all training calls.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (64, 32),
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        epochs: int = 10,
        batch_size: int = 256,
        pos_weight: float | str | None = "balanced",
        max_pos_weight: float = 100.0,
        seed: int = 0,
        n_threads: int | None = 1,
        optimizer: str = "adam",
        momentum: float = 0.0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.pos_weight = pos_weight
        self.max_pos_weight = max_pos_weight
        self.seed = seed
        self.n_threads = n_threads
        self.optimizer = optimizer
        self.momentum = momentum

    def _build_network(self, n_features: int) -> nn.Module:
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"AttackClassifier: dropout must be in [0, 1); got {self.dropout}.")
        self.classes_ = np.array([0, 1])
        return _mlp(n_features, tuple(int(h) for h in self.hidden_layers), 1, float(self.dropout))

    def _make_optimiser(self, network: nn.Module) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            if not 0 <= self.momentum < 1:
                raise ConfigError(f"AttackClassifier: momentum must be in [0, 1); got {self.momentum}.")
            return torch.optim.SGD(
                network.parameters(), lr=self.learning_rate, momentum=self.momentum, weight_decay=self.weight_decay
            )
        if self.optimizer != "adam":
            raise ConfigError(f"AttackClassifier: optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}.")
        return super()._make_optimiser(network)

    def _training_data(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        if y is None:
            raise ConfigError("AttackClassifier: training needs labels y (0 benign, 1 attack).")
        return X, y

    def _before_training(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None
        if self.pos_weight is None:
            weight = 1.0
        elif self.pos_weight == "balanced":
            n_pos = float(y.sum())
            n_neg = float(y.size - n_pos)
            weight = min(n_neg / n_pos, float(self.max_pos_weight)) if n_pos > 0 and n_neg > 0 else 1.0
            weight = max(weight, 1.0)
        elif isinstance(self.pos_weight, int | float) and self.pos_weight > 0:
            weight = float(self.pos_weight)
        else:
            raise ConfigError(
                f"AttackClassifier: pos_weight must be 'balanced', None or a positive number; got {self.pos_weight!r}."
            )
        self.pos_weight_ = weight
        self._loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([weight], dtype=torch.float32))

    def _batch_loss(self, network: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
        assert yb is not None
        return self._loss(network(xb).squeeze(-1), yb)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the attack logit of each row: higher means more likely an attack.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64 logits. Use these (not probabilities) for ranking and thresholds:
            float32 sigmoids saturate at 1.0 and tie.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        return self._forward_numpy(X, "decision_function").reshape(-1).astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples, 2)``: columns benign, attack.
        """
        z = self.decision_function(X)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Return 1 where the logit is positive (probability > 0.5), else 0.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, int64. For an operating point at a target false-positive rate use
            :func:`calibrate_threshold` on the logits instead.
        """
        return (self.decision_function(X) > 0).astype(np.int64)
