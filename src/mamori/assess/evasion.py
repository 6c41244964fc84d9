"""Evasion attacks from the Adversarial Robustness Toolbox (ART) against the attack classifier.

The classifier scores standardised feature rows and alerts when its logit exceeds the member's threshold. ART
attacks need a two-class classifier, so the network is wrapped to output ``[threshold, logit]``: class 1 (the
alert) wins exactly when the logit exceeds the threshold. An evasion succeeds when an alerted attack row is
changed so that it is no longer alerted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mamori.errors import ConfigError

__all__ = ["ThresholdWrapper", "gradient_evasion", "hopskipjump_evasion"]

logger = logging.getLogger(__name__)


class ThresholdWrapper(nn.Module):
    """Two-class view of a one-logit network: outputs ``[threshold, logit]`` per row.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(n, d)`` standardised rows to ``(n, 1)`` logits.
    threshold : float
        The alert threshold on the logit.
    """

    def __init__(self, network: nn.Module, threshold: float) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("threshold", torch.tensor([float(threshold)], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(n, 2)`` logits: column 0 the threshold, column 1 the network's logit."""
        z = self.network(x).reshape(-1, 1)
        return torch.cat([self.threshold.expand_as(z), z], dim=1)


def _clip_values(X: np.ndarray, clip: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    low, high = (clip[0], clip[1]) if clip is not None else (X.min(axis=0), X.max(axis=0))
    low = np.minimum(np.asarray(low, dtype=np.float32), X.min(axis=0))
    high = np.maximum(np.asarray(high, dtype=np.float32), X.max(axis=0))
    # ART needs low < high; a constant column gets a negligible width (it stays effectively fixed)
    return low.astype(np.float32), np.maximum(high, low + 1e-6).astype(np.float32)


def gradient_evasion(
    network: nn.Module,
    threshold: float,
    X: np.ndarray,  # noqa: N803
    epsilons: Sequence[float],
    *,
    mask: np.ndarray | None = None,
    clip: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 10,
) -> list[dict[str, float]]:
    """Projected gradient descent (ART ``ProjectedGradientDescent``, L-infinity) against the PyTorch network.

    Parameters
    ----------
    network : torch.nn.Module
        The classifier's network (standardised rows to one logit).
    threshold : float
        Alert threshold on the logit.
    X : numpy.ndarray
        Shape ``(n, d)``: standardised attack rows that are currently alerted.
    epsilons : sequence of float
        Perturbation budgets, in standard deviations of each feature (L-infinity).
    mask : numpy.ndarray or None, default=None
        Shape ``(d,)``, 1 where the attacker may change the column; None means every column.
    clip : tuple of numpy.ndarray or None, default=None
        Per-column ``(low, high)`` in standardised units the perturbed rows must stay within (values seen in real
        traffic); None uses the range of ``X``.
    max_iter : int, default=10
        PGD iterations per budget.

    Returns
    -------
    list of dict
        Per budget: ``epsilon``, ``success_rate`` (share no longer alerted), ``mean_linf`` of the change, ``n``.

    Raises
    ------
    ConfigError
        If ``X`` is empty.
    """
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    if len(X) == 0:
        raise ConfigError("gradient_evasion: no alerted attack rows to perturb.")
    X = np.asarray(X, dtype=np.float32)  # noqa: N806
    network.eval()
    wrapper = ThresholdWrapper(network, threshold)
    classifier = PyTorchClassifier(
        model=wrapper, loss=nn.CrossEntropyLoss(), input_shape=(X.shape[1],), nb_classes=2,
        clip_values=_clip_values(X, clip), device_type="cpu",
    )
    labels = np.zeros((len(X), 2), dtype=np.float32)
    labels[:, 1] = 1.0
    mask_arr = None if mask is None else np.broadcast_to(np.asarray(mask, dtype=np.float32), X.shape).copy()
    rows = []
    for eps in epsilons:
        attack = ProjectedGradientDescent(
            classifier, norm=np.inf, eps=float(eps), eps_step=max(float(eps) / 4.0, 1e-6), max_iter=max_iter,
            targeted=False, num_random_init=0, batch_size=256, verbose=False,
        )
        X_adv = attack.generate(X, y=labels, mask=mask_arr)  # noqa: N806
        with torch.no_grad():
            z = network(torch.from_numpy(X_adv.astype(np.float32))).reshape(-1).numpy()
        rows.append({
            "epsilon": float(eps),
            "success_rate": float((z <= threshold).mean()),
            "mean_linf": float(np.abs(X_adv - X).max(axis=1).mean()),
            "n": int(len(X)),
        })
    return rows


def hopskipjump_evasion(
    network: nn.Module,
    threshold: float,
    X: np.ndarray,  # noqa: N803
    *,
    X_init: np.ndarray | None = None,  # noqa: N803
    clip: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 10,
    max_eval: int = 200,
    init_eval: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """HopSkipJump (ART), a black-box decision attack: it sees only alert / no alert, never gradients or scores.

    Parameters
    ----------
    network : torch.nn.Module
        The classifier's network; queried only through its alert decision.
    threshold : float
        Alert threshold on the logit.
    X : numpy.ndarray
        Shape ``(n, d)``: standardised attack rows that are currently alerted.
    X_init : numpy.ndarray or None, default=None
        Shape ``(n, d)``: not-alerted starting points (e.g. benign rows) the attack walks back from towards each
        attack row; None lets ART draw random starting points (which in this feature space are rarely benign).
    clip : tuple of numpy.ndarray or None, default=None
        Per-column ``(low, high)`` bounds in standardised units; None uses the range of ``X``.
    max_iter, max_eval, init_eval : int
        HopSkipJump's iteration and query budgets.
    seed : int, default=0
        Seeds numpy's global generator, which ART's random initialisation draws from.

    Returns
    -------
    dict
        ``success_rate`` (share no longer alerted), ``median_l2`` of the successful changes (standardised
        units), ``queries`` (decisions asked of the model) and ``n``.

    Raises
    ------
    ConfigError
        If ``X`` is empty.
    """
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    if len(X) == 0:
        raise ConfigError("hopskipjump_evasion: no alerted attack rows to perturb.")
    X = np.asarray(X, dtype=np.float32)  # noqa: N806
    network.eval()
    queries = 0

    def decide(x: np.ndarray) -> np.ndarray:
        nonlocal queries
        queries += len(x)
        with torch.no_grad():
            z = network(torch.from_numpy(np.asarray(x, dtype=np.float32))).reshape(-1).numpy()
        alert = (z > threshold).astype(np.float32)
        return np.stack([1.0 - alert, alert], axis=1)

    low, high = _clip_values(X, clip)
    classifier = BlackBoxClassifier(decide, input_shape=(X.shape[1],), nb_classes=2, clip_values=(low, high))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        attack = HopSkipJump(classifier, targeted=False, norm=2, max_iter=max_iter, max_eval=max_eval,
                             init_eval=init_eval, init_size=100, verbose=False)
        X_adv = attack.generate(X, x_adv_init=None if X_init is None else np.asarray(X_init, np.float32)).astype(
            np.float32)  # noqa: N806
    finally:
        np.random.set_state(state)
    evaded = decide(X_adv)[:, 1] == 0
    dist = np.linalg.norm(X_adv - X, axis=1)
    return {
        "success_rate": float(evaded.mean()),
        "median_l2": float(np.median(dist[evaded])) if evaded.any() else float("nan"),
        "queries": float(queries),
        "n": float(len(X)),
    }
