"""The label-free anomaly detector: an autoencoder trained on traffic believed normal."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from mamori.errors import ConfigError
from mamori.models.base import TorchDetector

__all__ = ["AutoencoderDetector"]

logger = logging.getLogger(__name__)


class AutoencoderDetector(TorchDetector):
    """Autoencoder whose reconstruction error is the anomaly score; needs no attack labels.

    Parameters
    ----------
    hidden_layers : tuple of int, default=(64, 16)
        Encoder widths; the last is the code size. The decoder mirrors them.
    learning_rate : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=1e-5
        Adam weight decay.
    epochs : int, default=10
        Epochs of ``fit`` (and default local epochs of ``fit_local``).
    batch_size : int, default=256
        Mini-batch size.
    seed : int, default=0
        Seeds initialisation and shuffling.
    n_threads : int or None, default=1
        PyTorch threads while training and scoring (restored afterwards); 1 is fastest for these small
        networks on a shared machine and keeps results bit-identical. None leaves PyTorch's setting alone.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the inputs while training (a denoising autoencoder: it
        learns to reconstruct the clean row from a perturbed one). On standardised features, 0.1–0.3 keeps the
        network from fitting every wrinkle of the training traffic, so benign rows slightly unlike it still
        reconstruct well; scoring never adds noise. 0 trains a plain autoencoder.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained autoencoder.
    n_features_in_ : int
        Input width.
    n_samples_seen_ : int
        Rows used by the last training call.
    loss_history_ : list of float
        Mean loss per epoch.

    Notes
    -----
    ``fit(X)`` trains on all rows: pass traffic believed normal. If ``y`` is given, only rows with ``y == 0`` are
    used, which is convenient in experiments.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (64, 16),
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        epochs: int = 10,
        batch_size: int = 256,
        seed: int = 0,
        n_threads: int | None = 1,
        noise: float = 0.0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.n_threads = n_threads
        self.noise = noise

    def _build_network(self, n_features: int) -> nn.Module:
        widths = [n_features, *(int(h) for h in self.hidden_layers)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:  # the code layer stays linear
                layers.append(nn.ReLU())
        rev = widths[::-1]
        for i, (a, b) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(rev) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def _training_data(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        if y is None:
            return X, None
        return X[y == 0], None

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.noise) >= 0.0:
            raise ConfigError(f"AutoencoderDetector: noise must be >= 0; got {self.noise!r}.")

    def _batch_loss(self, network: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
        if self.noise > 0:  # seeded: _train runs under a forked, seeded torch RNG
            return ((network(xb + float(self.noise) * torch.randn_like(xb)) - xb) ** 2).mean()
        return ((network(xb) - xb) ** 2).mean()

    def reconstruction_errors(self, X: Any) -> np.ndarray:
        """Return the squared reconstruction error of every feature.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples, n_features)``, float64; row means are the anomaly scores.
        """
        recon = self._forward_numpy(X, "reconstruction_errors").astype(np.float64)
        return (np.asarray(X, dtype=np.float64) - recon) ** 2

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the anomaly score (mean squared reconstruction error): higher is more anomalous.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        return self.reconstruction_errors(X).mean(axis=1)

    def score_samples(self, X: Any) -> np.ndarray:
        """Return the negated anomaly score (scikit-learn convention: lower is more abnormal).

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``.
        """
        return -self.decision_function(X)
