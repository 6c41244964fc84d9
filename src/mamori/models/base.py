"""Shared training machinery of mamori's PyTorch detectors: seeding, weights as NumPy, FedProx."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mamori.errors import ConfigError, NotFittedError, SchemaError

__all__ = ["TorchDetector", "torch_threads"]

logger = logging.getLogger(__name__)


def check_matrix(X: Any, where: str, n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a finite float32 2-D array or raise a SchemaError naming ``where``."""
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{where}: X must be a numeric 2-D array; {exc}") from exc
    if arr.ndim != 2:
        raise SchemaError(f"{where}: X must be 2-D (n_samples, n_features); got shape {arr.shape}.")
    if n_features is not None and arr.shape[1] != n_features:
        raise SchemaError(
            f"{where}: X has {arr.shape[1]} features, but the model was built for {n_features}; use the same "
            "FeatureSpec as the consortium."
        )
    if not np.isfinite(arr).all():
        raise SchemaError(f"{where}: X contains NaN or infinite values; standardise features first.")
    return arr


def check_labels(y: Any, n: int, where: str) -> np.ndarray:
    """Return ``y`` as a 0/1 float32 vector of length ``n`` or raise a SchemaError."""
    arr = np.asarray(y).ravel()
    if arr.shape[0] != n:
        raise SchemaError(f"{where}: y has {arr.shape[0]} labels for {n} rows.")
    values = np.unique(arr)
    if not np.isin(values, [0, 1, False, True]).all():
        raise SchemaError(f"{where}: y must hold 0/1 labels (benign/attack); got values {values[:5].tolist()}.")
    return arr.astype(np.float32)


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n_threads)`` and restore the previous value (None: unchanged)."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TorchDetector:
    """Base class: a PyTorch network behind a scikit-learn-style estimator, ready for federated rounds.

    Subclasses implement ``_build_network(n_features)``, ``_training_data(X, y)`` and
    ``_batch_loss(network, xb, yb)``, and store their own constructor parameters.
    """

    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    n_threads: int | None

    # ---- scikit-learn contract ----------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters.

        Parameters
        ----------
        deep : bool, default=True
            Ignored; there are no nested estimators.

        Returns
        -------
        dict
            Parameter name to value.
        """
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> TorchDetector:
        """Set constructor parameters.

        Parameters
        ----------
        **params : dict
            Parameter names and values.

        Returns
        -------
        TorchDetector
            ``self``.
        """
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(
                    f"{type(self).__name__}.set_params: unknown parameter {key!r}; valid: {sorted(valid)}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- to implement -------------------------------------------------------------------------------------
    def _build_network(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def _training_data(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _batch_loss(self, network: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _before_training(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """Hook run once per ``fit``/``fit_local`` call on the training rows."""

    def _make_optimiser(self, network: nn.Module) -> torch.optim.Optimizer:
        """The optimiser of one ``fit``/``fit_local`` call (Adam; subclasses may offer others)."""
        return torch.optim.Adam(network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)

    # ---- federated-learning interface ---------------------------------------------------------------------
    def _check_params(self) -> None:
        if not isinstance(self.seed, int | np.integer):
            raise ConfigError(f"{type(self).__name__}: seed must be an int; got {self.seed!r}.")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive int; got {value!r}.")
        if not self.learning_rate > 0:
            raise ConfigError(f"{type(self).__name__}: learning_rate must be > 0; got {self.learning_rate!r}.")

    def init_weights(self, n_features: int) -> TorchDetector:
        """Build the network from the seed alone, without data, so every member starts from the same weights.

        Parameters
        ----------
        n_features : int
            Width of the feature matrices (``FeatureSpec.n_features``).

        Returns
        -------
        TorchDetector
            ``self``, with ``network_`` and ``n_features_in_`` set.
        """
        self._check_params()
        if n_features < 1:
            raise ConfigError(f"{type(self).__name__}.init_weights: n_features must be >= 1; got {n_features}.")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            network = self._build_network(int(n_features))
        self.network_ = network.float()
        self.n_features_in_ = int(n_features)
        self.n_samples_seen_ = 0
        self.loss_history_: list[float] = []
        self._generator = torch.Generator().manual_seed(int(self.seed) + 1)
        return self

    def _check_fitted(self, where: str) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError(
                f"{type(self).__name__}.{where}: this model is not fitted yet; call fit(X, y), fit_local(...) or "
                "init_weights(...) + set_weights(...) first."
            )

    def get_weights(self) -> list[np.ndarray]:
        """Return the network's parameters as NumPy arrays (copies), in ``state_dict`` order.

        Returns
        -------
        list of numpy.ndarray
            float32 arrays.

        Raises
        ------
        NotFittedError
            Before ``init_weights`` / ``fit``.
        """
        self._check_fitted("get_weights")
        return [t.detach().cpu().numpy().copy() for t in self.network_.state_dict().values()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> TorchDetector:
        """Load parameters from NumPy arrays (e.g. the aggregated global model).

        Parameters
        ----------
        weights : sequence of numpy.ndarray
            As returned by :meth:`get_weights`. If the network does not exist yet it is built with the width
            implied by the first weight matrix.

        Returns
        -------
        TorchDetector
            ``self``.

        Raises
        ------
        SchemaError
            If the number or shapes of arrays do not match the network.
        """
        weights = list(weights)
        if not hasattr(self, "network_"):
            if not weights or np.asarray(weights[0]).ndim != 2:
                raise SchemaError(f"{type(self).__name__}.set_weights: cannot infer the input width from weights.")
            self.init_weights(int(np.asarray(weights[0]).shape[1]))
        state = self.network_.state_dict()
        if len(weights) != len(state):
            raise SchemaError(
                f"{type(self).__name__}.set_weights: got {len(weights)} arrays, the network has {len(state)}."
            )
        new_state = {}
        for i, ((name, current), array) in enumerate(zip(state.items(), weights, strict=True)):
            array = np.asarray(array)
            if tuple(array.shape) != tuple(current.shape):
                raise SchemaError(
                    f"{type(self).__name__}.set_weights: array {i} ({name}) has shape {array.shape}, "
                    f"expected {tuple(current.shape)}."
                )
            new_state[name] = torch.as_tensor(array, dtype=current.dtype).clone()
        self.network_.load_state_dict(new_state)
        return self

    def fit(self, X: Any, y: Any = None) -> TorchDetector:
        """Train from scratch (weights re-initialised from ``seed``) for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, standardised features.
        y : array-like, optional
            Shape ``(n_samples,)``, 0 benign / 1 attack.

        Returns
        -------
        TorchDetector
            ``self``.
        """
        X = check_matrix(X, f"{type(self).__name__}.fit")
        self.init_weights(X.shape[1])
        return self._train(X, y, int(self.epochs), 0.0, None, "fit")

    def fit_averaged(self, X: Any, y: Any = None, tail: int = 1) -> TorchDetector:
        """Train from scratch like :meth:`fit`, then keep the average of the weights of the last ``tail`` epochs.

        Tail (iterate) averaging, as in stochastic weight averaging: the training run is exactly :meth:`fit`'s;
        the weights after each of the last ``tail`` epochs are averaged uniformly and loaded at the end.
        ``tail=1`` is :meth:`fit`.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, standardised features.
        y : array-like, optional
            Shape ``(n_samples,)``, 0 benign / 1 attack.
        tail : int, default=1
            Epochs averaged, from 1 to ``epochs``.

        Returns
        -------
        TorchDetector
            ``self``.
        """
        where = f"{type(self).__name__}.fit_averaged"
        if not 1 <= int(tail) <= max(int(self.epochs), 1):
            raise ConfigError(f"{where}: tail must be between 1 and epochs ({self.epochs}); got {tail}.")
        X = check_matrix(X, where)
        self.init_weights(X.shape[1])
        return self._train(X, y, int(self.epochs), 0.0, None, "fit_averaged", tail=int(tail))

    def fit_local(
        self,
        X: Any,
        y: Any = None,
        epochs: int | None = None,
        proximal_mu: float = 0.0,
        reference_weights: Sequence[np.ndarray] | None = None,
        gradient_correction: Sequence[np.ndarray] | None = None,
    ) -> TorchDetector:
        """Continue training from the current weights: one federated client round.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, standardised with the consortium's statistics.
        y : array-like, optional
            Shape ``(n_samples,)``.
        epochs : int, optional
            Local epochs; defaults to ``self.epochs``.
        proximal_mu : float, default=0.0
            FedProx coefficient: adds ``mu / 2 * ||w - w_ref||^2`` to the loss when > 0.
        reference_weights : sequence of numpy.ndarray, optional
            ``w_ref`` for the proximal term; defaults to the weights at the start of this call (the global
            model just received).
        gradient_correction : sequence of numpy.ndarray, optional
            SCAFFOLD's control-variate correction ``c - c_i``, one array per :meth:`get_weights` array: added to
            every mini-batch gradient before the optimiser step (Adam or SGD alike). When given, the call also
            records ``mean_gradient_``: the mean of the raw (uncorrected) mini-batch gradients of this call, the
            member's new control variate ``c_i`` (SCAFFOLD's option II; for plain SGD it equals
            ``c_i - c + (w_start - w_end) / (steps * lr)``).

        Returns
        -------
        TorchDetector
            ``self``; ``n_samples_seen_`` holds the number of training rows used in this call.
        """
        where = f"{type(self).__name__}.fit_local"
        if proximal_mu < 0:
            raise ConfigError(f"{where}: proximal_mu must be >= 0; got {proximal_mu}.")
        X = check_matrix(X, where)
        if not hasattr(self, "network_"):
            self.init_weights(X.shape[1])
        X = check_matrix(X, where, self.n_features_in_)
        n_epochs = int(self.epochs if epochs is None else epochs)
        if n_epochs < 0:
            raise ConfigError(f"{where}: epochs must be >= 0; got {epochs}.")
        return self._train(
            X, y, n_epochs, float(proximal_mu), reference_weights, "fit_local", correction=gradient_correction
        )

    def _named_arrays(self, arrays: Sequence[np.ndarray], what: str, where: str) -> dict[str, torch.Tensor]:
        """``arrays`` (in :meth:`get_weights` order) as float32 tensors keyed by the trainable parameters' names."""
        arrays = list(arrays)
        state = self.network_.state_dict()
        if len(arrays) != len(state):
            raise SchemaError(f"{type(self).__name__}.{where}: {what} has {len(arrays)} arrays, expected {len(state)}.")
        params = dict(self.network_.named_parameters())
        out = {}
        for (name, current), array in zip(state.items(), arrays, strict=True):
            array = np.asarray(array)
            if tuple(array.shape) != tuple(current.shape):
                raise SchemaError(
                    f"{type(self).__name__}.{where}: {what} array {name} has shape {array.shape}, "
                    f"expected {tuple(current.shape)}."
                )
            if name in params:
                out[name] = torch.as_tensor(array, dtype=torch.float32)
        return out

    def _train(
        self,
        X: np.ndarray,
        y: Any,
        epochs: int,
        mu: float,
        reference_weights: Sequence[np.ndarray] | None,
        where: str,
        *,
        correction: Sequence[np.ndarray] | None = None,
        tail: int = 1,
    ) -> TorchDetector:
        y_arr = None if y is None else check_labels(y, X.shape[0], f"{type(self).__name__}.{where}")
        Xt, yt = self._training_data(X, y_arr)
        self._before_training(Xt, yt)
        self.n_samples_seen_ = int(Xt.shape[0])
        if Xt.shape[0] == 0 or epochs == 0:
            return self
        network = self.network_
        params = dict(network.named_parameters())
        reference: dict[str, torch.Tensor] = {}
        if mu > 0:
            ref_list = list(reference_weights) if reference_weights is not None else self.get_weights()
            reference = self._named_arrays(ref_list, "reference_weights", where)
        # SCAFFOLD: the correction is added to each raw gradient; the raw gradients' mean becomes the new c_i.
        shift = self._named_arrays(correction, "gradient_correction", where) if correction is not None else None
        grad_sum = {n: torch.zeros_like(p) for n, p in params.items()} if shift is not None else None
        # Tail averaging (fit_averaged): the sum of the weights after each of the last ``tail`` epochs.
        tail_sum = (
            {n: torch.zeros_like(t, dtype=torch.float64) for n, t in network.state_dict().items()} if tail > 1 else {}
        )
        steps = 0
        x_all = torch.from_numpy(np.ascontiguousarray(Xt, dtype=np.float32))
        y_all = None if yt is None else torch.from_numpy(np.ascontiguousarray(yt, dtype=np.float32))
        optimiser = self._make_optimiser(network)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator).item())
        n = x_all.shape[0]
        with torch.random.fork_rng(devices=[]), torch_threads(self.n_threads):
            torch.manual_seed(seed)
            network.train()
            for epoch in range(epochs):
                perm = torch.randperm(n, generator=self._generator)
                total, batches = 0.0, 0
                for start in range(0, n, self.batch_size):
                    idx = perm[start : start + self.batch_size]
                    xb = x_all[idx]
                    yb = None if y_all is None else y_all[idx]
                    loss = self._batch_loss(network, xb, yb)
                    if reference:
                        prox = sum(((params[k] - r) ** 2).sum() for k, r in reference.items())
                        loss = loss + 0.5 * mu * prox
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    if shift is not None and grad_sum is not None:
                        for name, p in params.items():
                            if p.grad is not None:
                                grad_sum[name] += p.grad
                                p.grad += shift[name]
                        steps += 1
                    optimiser.step()
                    total += float(loss.detach())
                    batches += 1
                self.loss_history_.append(total / max(batches, 1))
                if tail > 1 and epoch >= epochs - tail:
                    for name, t in network.state_dict().items():
                        tail_sum[name] += t.detach().to(torch.float64)
                logger.debug("%s.%s epoch %d: loss %.5f", type(self).__name__, where, epoch, self.loss_history_[-1])
        network.eval()
        if tail > 1:
            count = min(tail, epochs)
            state = network.state_dict()
            network.load_state_dict({n: (tail_sum[n] / count).to(state[n].dtype) for n in state})
        if grad_sum is not None:
            self.mean_gradient_ = [
                (grad_sum[name] / max(steps, 1)).numpy().copy() if name in grad_sum else np.zeros(t.shape, np.float32)
                for name, t in network.state_dict().items()
            ]
        return self

    def _forward_numpy(self, X: Any, where: str, batch_size: int = 65_536) -> np.ndarray:
        """Run the network in eval mode over ``X`` in batches; returns the raw outputs as float32."""
        self._check_fitted(where)
        X = check_matrix(X, f"{type(self).__name__}.{where}", self.n_features_in_)
        self.network_.eval()
        outs = []
        with torch.no_grad(), torch_threads(getattr(self, "n_threads", None)):
            for start in range(0, X.shape[0], batch_size):
                outs.append(self.network_(torch.from_numpy(X[start : start + batch_size])).numpy())
        if not outs:
            return np.zeros((0,), dtype=np.float32)
        return np.concatenate(outs, axis=0)
