"""What a member contributes to a federation: local training and evaluation on its own data."""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from mamori.errors import FederationError
from mamori.federation.schedule import LR_FACTOR_KEY, received_lr_factor

__all__ = ["EstimatorTrainer", "FederatedEstimator", "LocalTrainer", "ScaffoldTrainer"]

logger = logging.getLogger(__name__)

#: Value of ``config`` keys a trainer receives (plain Python scalars).
ConfigValue = int | float | str | bool


@runtime_checkable
class LocalTrainer(Protocol):
    """A member of a federation: trains and evaluates a model on data that never leaves it.

    The federation calls these two methods with the current global weights. Implementations keep
    their data private; only the returned arrays and scalar metrics travel to the coordinator.

    ``config`` always holds ``server_round`` (int, 0 for the evaluation of the initial model),
    ``local_epochs`` (int), ``proximal_mu`` (float, 0 unless FedProx) and ``seed`` (int, distinct
    per round and member), plus the run's ``FederationConfig.trainer_config``. With a
    ``FederationConfig.lr_schedule`` other than ``"constant"``, a train ``config`` also holds ``lr_factor``
    (float in ``(0, 1]``): the member should train with its base learning rate times this factor.
    """

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train from the global weights ``arrays``; return new weights, number of examples, metrics."""
        ...

    def evaluate(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[float, int, dict[str, float]]:
        """Evaluate the global weights ``arrays``; return loss, number of examples, metrics."""
        ...


@runtime_checkable
class ScaffoldTrainer(Protocol):
    """A member that can train with SCAFFOLD control variates (``FederationConfig.client_algorithm="scaffold"``).

    The member keeps its own control variate ``c_i`` (zeros before its first round) between rounds.
    """

    def fit_scaffold(
        self, arrays: list[np.ndarray], control: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
        """Train from ``arrays`` with the server's control variate ``control`` (``c``).

        Returns the new weights, the change of the member's control variate ``c_i(new) - c_i(old)`` (one array
        per weight array), the number of examples and metrics.
        """
        ...


@runtime_checkable
class FederatedEstimator(Protocol):
    """The estimator contract :class:`EstimatorTrainer` adapts (that of ``mamori.models``' classifiers)."""

    def get_weights(self) -> list[np.ndarray]:
        """Return the model's parameters as NumPy arrays, in a fixed order."""
        ...

    def set_weights(self, weights: list[np.ndarray]) -> Any:
        """Load parameters in the order :meth:`get_weights` returns them."""
        ...

    def fit_local(
        self,
        X: np.ndarray,  # noqa: N803 - scikit-learn naming
        y: np.ndarray,
        epochs: int,
        proximal_mu: float = 0.0,
        reference_weights: list[np.ndarray] | None = None,
    ) -> Any:
        """Continue training from the current weights for ``epochs`` epochs."""
        ...

    def decision_function(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Return one logit per row of ``X`` (higher means more likely an attack)."""
        ...


def binary_log_loss(y: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of labels ``y`` against ``logits`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    return float(np.mean(np.logaddexp(0.0, z) - t * z))


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """PR-AUC (average precision) and ROC-AUC of ``scores``; NaN when ``y`` holds a single class."""
    t = np.asarray(y).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    positives = int(np.sum(t == 1))
    if positives == 0 or positives == t.size:
        return {"pr_auc": math.nan, "roc_auc": math.nan, "positives": float(positives)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr_auc = float(average_precision_score(t, s))
        roc_auc = float(roc_auc_score(t, s))
    return {"pr_auc": pr_auc, "roc_auc": roc_auc, "positives": float(positives)}


class EstimatorTrainer:
    """Make any :class:`FederatedEstimator` a federation member (a :class:`LocalTrainer`).

    Parameters
    ----------
    estimator : FederatedEstimator
        The member's model object; its weights are overwritten by the global weights each call.
        It must already be initialised (e.g. ``init_weights(n_features)``) so that ``set_weights``
        accepts the global arrays.
    X_train : numpy.ndarray of shape (n_train, n_features)
        The member's training matrix.
    y_train : numpy.ndarray of shape (n_train,)
        Binary labels (1 = attack).
    X_eval : numpy.ndarray of shape (n_eval, n_features)
        The member's evaluation matrix (federated evaluation reports on it).
    y_eval : numpy.ndarray of shape (n_eval,)
        Binary labels of ``X_eval``.
    local_epochs : int or None, default=None
        Epochs per round. None uses the federation's ``local_epochs`` from ``config``.
    learning_rate_schedule : callable or None, default=None
        ``schedule(server_round) -> learning rate``: set as the estimator's ``learning_rate`` before each round's
        local training (``server_round`` counts from 1). The estimator must have a ``learning_rate`` attribute
        that its optimiser reads at the start of every ``fit_local`` call (mamori.models' detectors do). None:
        the estimator's own learning rate in every round.

    Notes
    -----
    When the coordinator sends ``config["lr_factor"]`` (``FederationConfig.lr_schedule``), each round's learning
    rate is the base rate - ``learning_rate_schedule(server_round)``, else the estimator's ``learning_rate`` when
    the trainer was built - times that factor; the estimator then needs a ``learning_rate`` attribute.

    ``fit`` reports ``train_loss`` (binary cross-entropy on the member's training data after
    local training). ``evaluate`` returns the binary cross-entropy as loss and ``pr_auc``
    (scikit-learn's ``average_precision_score`` on logits), ``roc_auc`` and ``positives``;
    the AUCs are NaN when the evaluation split holds a single class.
    """

    def __init__(
        self,
        estimator: FederatedEstimator,
        X_train: np.ndarray,  # noqa: N803
        y_train: np.ndarray,
        X_eval: np.ndarray,  # noqa: N803
        y_eval: np.ndarray,
        local_epochs: int | None = None,
        learning_rate_schedule: Callable[[int], float] | None = None,
    ) -> None:
        self.estimator = estimator
        self.X_train = X_train
        self.y_train = y_train
        self.X_eval = X_eval
        self.y_eval = y_eval
        self.local_epochs = local_epochs
        self.learning_rate_schedule = learning_rate_schedule
        # The base rate the coordinator's lr_factor scales: the estimator's own, before any round overwrote it.
        base = getattr(estimator, "learning_rate", None)
        self._base_learning_rate = float(base) if isinstance(base, (int, float)) and base > 0 else None
        if learning_rate_schedule is not None and not hasattr(estimator, "learning_rate"):
            raise FederationError(
                f"EstimatorTrainer: learning_rate_schedule needs an estimator with a learning_rate attribute; "
                f"{type(estimator).__name__} has none."
            )

    def _schedule(self, config: Mapping[str, ConfigValue]) -> None:
        """Set this round's learning rate: ``learning_rate_schedule`` and/or the coordinator's ``lr_factor``."""
        factor = received_lr_factor(config, "EstimatorTrainer")
        if self.learning_rate_schedule is None and factor is None:
            return
        if self.learning_rate_schedule is not None:
            lr = float(self.learning_rate_schedule(int(config.get("server_round", 0))))
            if not lr > 0:
                raise FederationError(f"EstimatorTrainer: learning_rate_schedule gave {lr!r}; it must be > 0.")
        elif self._base_learning_rate is None:
            raise FederationError(
                f"EstimatorTrainer: the coordinator sent {LR_FACTOR_KEY}={factor!r} (FederationConfig.lr_schedule) "
                f"but {type(self.estimator).__name__} has no learning_rate attribute to scale; use "
                "lr_schedule='constant' for this model."
            )
        else:
            lr = self._base_learning_rate
        if factor is not None:
            lr = lr * factor
        # The optimiser is rebuilt from the estimator's learning_rate at the start of every fit_local call.
        self.estimator.learning_rate = lr  # type: ignore[attr-defined]

    def _check(self) -> None:
        for name, X, y in (("train", self.X_train, self.y_train), ("eval", self.X_eval, self.y_eval)):  # noqa: N806
            if len(X) != len(y):
                raise FederationError(
                    f"EstimatorTrainer: X_{name} has {len(X)} rows but y_{name} has {len(y)} labels; "
                    "they must match row for row."
                )
        if len(self.X_train) == 0:
            raise FederationError("EstimatorTrainer: X_train is empty; a member needs at least one training row.")

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train locally from the global weights.

        Parameters
        ----------
        arrays : list of numpy.ndarray
            Global weights.
        config : mapping
            Round settings (``local_epochs``, ``proximal_mu``, ...).

        Returns
        -------
        weights : list of numpy.ndarray
            The locally trained weights.
        num_examples : int
            Number of training rows (FedAvg's weight).
        metrics : dict of str to float
            ``train_loss``.
        """
        self._check()
        epochs = int(self.local_epochs if self.local_epochs is not None else config.get("local_epochs", 1))
        mu = float(config.get("proximal_mu", 0.0))
        self._schedule(config)
        self.estimator.set_weights([a.copy() for a in arrays])
        self.estimator.fit_local(
            self.X_train,
            self.y_train,
            epochs=epochs,
            proximal_mu=mu,
            reference_weights=[a.copy() for a in arrays] if mu > 0 else None,
        )
        logits = self.estimator.decision_function(self.X_train)
        weights = [np.asarray(w) for w in self.estimator.get_weights()]
        return weights, len(self.X_train), {"train_loss": binary_log_loss(self.y_train, logits)}

    def fit_scaffold(
        self, arrays: list[np.ndarray], control: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
        """Train locally from the global weights with SCAFFOLD's correction (:class:`ScaffoldTrainer`).

        The estimator's ``fit_local`` must accept ``gradient_correction`` and then set ``mean_gradient_``
        (mamori's PyTorch detectors do): every mini-batch gradient gets ``c - c_i`` added before the optimiser
        step, and the mean raw gradient of the round becomes the member's new ``c_i`` (kept in
        ``control_``; zeros before the first round).

        Parameters
        ----------
        arrays : list of numpy.ndarray
            Global weights.
        control : list of numpy.ndarray
            The server's control variate ``c``, shaped like ``arrays``.
        config : mapping
            Round settings (``local_epochs``, ...).

        Returns
        -------
        weights : list of numpy.ndarray
            The locally trained weights.
        control_delta : list of numpy.ndarray
            ``c_i(new) - c_i(old)``, what the server adds (averaged) to ``c``.
        num_examples : int
            Number of training rows.
        metrics : dict of str to float
            ``train_loss``.
        """
        self._check()
        if "gradient_correction" not in inspect.signature(self.estimator.fit_local).parameters:
            raise FederationError(
                f"EstimatorTrainer.fit_scaffold: {type(self.estimator).__name__}.fit_local takes no "
                "gradient_correction; SCAFFOLD needs an estimator that applies it (mamori.models' detectors do)."
            )
        if [np.shape(c) for c in control] != [np.shape(a) for a in arrays]:
            raise FederationError(
                "EstimatorTrainer.fit_scaffold: the control variate's shapes "
                f"{[np.shape(c) for c in control]} differ from the weights' {[np.shape(a) for a in arrays]}."
            )
        own = getattr(self, "control_", None) or [np.zeros(np.shape(a), dtype=np.float32) for a in arrays]
        epochs = int(self.local_epochs if self.local_epochs is not None else config.get("local_epochs", 1))
        self._schedule(config)
        self.estimator.set_weights([a.copy() for a in arrays])
        if hasattr(self.estimator, "mean_gradient_"):
            del self.estimator.mean_gradient_  # type: ignore[attr-defined]
        self.estimator.fit_local(  # type: ignore[call-arg]  # checked above
            self.X_train,
            self.y_train,
            epochs=epochs,
            gradient_correction=[np.asarray(c, dtype=np.float32) - o for c, o in zip(control, own, strict=True)],
        )
        # No local step (e.g. zero epochs): the member's control variate stays as it was.
        new = getattr(self.estimator, "mean_gradient_", None) or own
        new = [np.asarray(c, dtype=np.float32) for c in new]
        delta = [n - o for n, o in zip(new, own, strict=True)]
        self.control_ = new
        logits = self.estimator.decision_function(self.X_train)
        weights = [np.asarray(w) for w in self.estimator.get_weights()]
        return weights, delta, len(self.X_train), {"train_loss": binary_log_loss(self.y_train, logits)}

    def evaluate(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[float, int, dict[str, float]]:
        """Evaluate the global weights on the member's evaluation split.

        Parameters
        ----------
        arrays : list of numpy.ndarray
            Global weights.
        config : mapping
            Round settings (unused).

        Returns
        -------
        loss : float
            Binary cross-entropy on ``X_eval``.
        num_examples : int
            Number of evaluation rows.
        metrics : dict of str to float
            ``pr_auc``, ``roc_auc`` (NaN for a single-class split) and ``positives``.
        """
        self._check()
        if len(self.X_eval) == 0:
            raise FederationError("EstimatorTrainer: X_eval is empty; give the member an evaluation split.")
        self.estimator.set_weights([a.copy() for a in arrays])
        logits = self.estimator.decision_function(self.X_eval)
        return binary_log_loss(self.y_eval, logits), len(self.X_eval), ranking_metrics(self.y_eval, logits)
