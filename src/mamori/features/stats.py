"""Normalisation statistics that can be computed federatedly, and the standardiser fitted from them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mamori.errors import ConfigError, NotFittedError, SchemaError

__all__ = ["FeatureStats", "Standardizer"]

logger = logging.getLogger(__name__)


class _both_ways:  # noqa: N801 - a decorator, named like one
    """Method usable on the class (``merge(items)``) and on an instance (``obj.merge(others)``, includes obj)."""

    def __init__(self, func: Callable[..., FeatureStats]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: FeatureStats | None, cls: type[FeatureStats]) -> Callable[..., FeatureStats]:
        if obj is None:
            return functools.partial(self.func, cls)

        def bound(stats: Iterable[FeatureStats] = ()) -> FeatureStats:
            return self.func(cls, [obj, *stats])

        bound.__doc__ = self.func.__doc__
        return bound


@dataclass(frozen=True)
class FeatureStats:
    """Per-column count, sum, sum of squares, minimum and maximum of a feature matrix; never rows.

    Parameters
    ----------
    count : numpy.ndarray
        Shape ``(d,)``, float64: finite values seen per column.
    total : numpy.ndarray
        Shape ``(d,)``, float64: sum per column.
    total_sq : numpy.ndarray
        Shape ``(d,)``, float64: sum of squares per column.
    minimum : numpy.ndarray
        Shape ``(d,)``, float64 (``+inf`` when empty).
    maximum : numpy.ndarray
        Shape ``(d,)``, float64 (``-inf`` when empty).

    Notes
    -----
    ``count``, ``total`` and ``total_sq`` are sums over rows, so the consortium-wide values are the sum of the
    members' values: they can go through secure aggregation (:meth:`to_summable` / :meth:`from_summable`).
    ``minimum`` and ``maximum`` are not sums and reveal one extreme value per column; they are kept for
    reporting only, a standardiser does not need them, and :meth:`to_summable` leaves them out.
    """

    count: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.count, self.total, self.total_sq, self.minimum, self.maximum)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise SchemaError(f"FeatureStats: all arrays must have the same shape (d,); got shapes {sorted(shapes)}.")

    @property
    def n_features(self) -> int:
        """Number of columns ``d``."""
        return int(self.count.shape[0])

    @classmethod
    def from_matrix(cls, X: np.ndarray) -> FeatureStats:
        """Compute the statistics of one member's matrix.

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, d)``. Non-finite values are ignored.

        Returns
        -------
        FeatureStats
            Column statistics.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise SchemaError(f"FeatureStats.from_matrix: X must be 2-D (n, d); got shape {X.shape}.")
        finite = np.isfinite(X)
        Xz = np.where(finite, X, 0.0)
        count = finite.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore"):
            minimum = np.where(finite, X, np.inf).min(axis=0, initial=np.inf)
            maximum = np.where(finite, X, -np.inf).max(axis=0, initial=-np.inf)
        return cls(count, Xz.sum(axis=0), (Xz * Xz).sum(axis=0), minimum, maximum)

    @_both_ways
    def merge(cls, stats: Iterable[FeatureStats]) -> FeatureStats:
        """Combine the statistics of several members: the statistics of their pooled rows.

        Call it on the class, ``FeatureStats.merge([a, b, c])``, or on one member's statistics,
        ``a.merge([b, c])`` (which includes ``a``).

        Parameters
        ----------
        stats : iterable of FeatureStats
            One per member, same number of columns.

        Returns
        -------
        FeatureStats
            Sums of counts, sums and sums of squares; minimum of minima; maximum of maxima.

        Raises
        ------
        SchemaError
            If ``stats`` is empty or the widths differ.
        """
        items = list(stats)
        if not items:
            raise SchemaError("FeatureStats.merge: nothing to merge; pass at least one FeatureStats.")
        widths = {s.n_features for s in items}
        if len(widths) != 1:
            raise SchemaError(f"FeatureStats.merge: members have different feature counts {sorted(widths)}.")
        return cls(
            np.sum([s.count for s in items], axis=0),
            np.sum([s.total for s in items], axis=0),
            np.sum([s.total_sq for s in items], axis=0),
            np.min([s.minimum for s in items], axis=0),
            np.max([s.maximum for s in items], axis=0),
        )

    def __add__(self, other: FeatureStats) -> FeatureStats:
        return FeatureStats.merge([self, other])

    @property
    def mean(self) -> np.ndarray:
        """Column means (0 where a column is empty)."""
        return np.divide(self.total, self.count, out=np.zeros_like(self.total), where=self.count > 0)

    @property
    def var(self) -> np.ndarray:
        """Population variance per column (0 where a column is empty)."""
        ex2 = np.divide(self.total_sq, self.count, out=np.zeros_like(self.total_sq), where=self.count > 0)
        return np.maximum(ex2 - self.mean**2, 0.0)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per column."""
        return np.sqrt(self.var)

    def to_summable(self) -> np.ndarray:
        """Return ``[count, total, total_sq]`` as one float64 vector for secure summation.

        Returns
        -------
        numpy.ndarray
            Shape ``(3 * d,)``.
        """
        return np.concatenate([self.count, self.total, self.total_sq])

    @classmethod
    def from_summable(cls, vector: np.ndarray) -> FeatureStats:
        """Rebuild statistics from a (securely summed) :meth:`to_summable` vector; extremes become unknown.

        Parameters
        ----------
        vector : numpy.ndarray
            Shape ``(3 * d,)``.

        Returns
        -------
        FeatureStats
            With ``minimum = -inf`` and ``maximum = +inf`` (unknown).
        """
        vector = np.asarray(vector, dtype=np.float64)
        if vector.ndim != 1 or vector.size % 3:
            raise SchemaError(f"FeatureStats.from_summable: expected a vector of length 3*d; got {vector.shape}.")
        d = vector.size // 3
        return cls(
            vector[:d].copy(), vector[d : 2 * d].copy(), vector[2 * d :].copy(), np.full(d, -np.inf), np.full(d, np.inf)
        )

    def to_arrays(self) -> list[np.ndarray]:
        """Return ``[count, total, total_sq, minimum, maximum]``."""
        return [self.count, self.total, self.total_sq, self.minimum, self.maximum]

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> FeatureStats:
        """Rebuild from :meth:`to_arrays`."""
        if len(arrays) != 5:
            raise SchemaError(f"FeatureStats.from_arrays: expected 5 arrays, got {len(arrays)}.")
        return cls(*(np.asarray(a, dtype=np.float64) for a in arrays))


class Standardizer:
    """Z-score columns with consortium-wide statistics, clipping extreme values.

    Parameters
    ----------
    clip : float or None, default=5.0
        Absolute z-scores above this are clipped (None disables clipping).
    min_std : float, default=1e-6
        Columns with a smaller standard deviation are centred but not scaled.

    Attributes
    ----------
    mean_ : numpy.ndarray
        Shape ``(d,)``.
    scale_ : numpy.ndarray
        Shape ``(d,)``; 1 for constant columns.
    n_features_in_ : int
        ``d``.
    """

    def __init__(self, clip: float | None = 5.0, min_std: float = 1e-6) -> None:
        self.clip = clip
        self.min_std = min_std

    def fit_stats(self, stats: FeatureStats) -> Standardizer:
        """Fit from (merged) statistics: the federated path.

        Parameters
        ----------
        stats : FeatureStats
            Consortium-wide statistics, e.g. ``FeatureStats.merge(members)``.

        Returns
        -------
        Standardizer
            ``self``.
        """
        if self.clip is not None and self.clip <= 0:
            raise ConfigError(f"Standardizer: clip must be positive or None; got {self.clip}.")
        std = stats.std
        self.mean_ = stats.mean.astype(np.float64)
        self.scale_ = np.where(std > self.min_std, std, 1.0)
        self.n_features_in_ = stats.n_features
        return self

    def fit(self, X: np.ndarray, y: object = None) -> Standardizer:
        """Fit from one matrix (the centralised path; equal to ``fit_stats(FeatureStats.from_matrix(X))``).

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, d)``.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        Standardizer
            ``self``.
        """
        return self.fit_stats(FeatureStats.from_matrix(X))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise and clip.

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, d)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, d)``, float32.

        Raises
        ------
        NotFittedError
            Before ``fit`` / ``fit_stats``.
        SchemaError
            If the width differs from the fitted one.
        """
        if not hasattr(self, "mean_"):
            raise NotFittedError("Standardizer: call fit(X) or fit_stats(stats) before transform.")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise SchemaError(
                f"Standardizer.transform: X has shape {X.shape}, expected (n, {self.n_features_in_}) as fitted."
            )
        Z = (X - self.mean_) / self.scale_
        Z = np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)
        if self.clip is not None:
            np.clip(Z, -self.clip, self.clip, out=Z)
        return Z.astype(np.float32)

    def fit_transform(self, X: np.ndarray, y: object = None) -> np.ndarray:
        """Fit on ``X`` and transform it.

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, d)``.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, d)``, float32.
        """
        return self.fit(X).transform(X)

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Return the constructor parameters (scikit-learn contract)."""
        return {"clip": self.clip, "min_std": self.min_std}

    def set_params(self, **params: object) -> Standardizer:
        """Set constructor parameters (scikit-learn contract)."""
        for key, value in params.items():
            if key not in ("clip", "min_std"):
                raise ConfigError(f"Standardizer.set_params: unknown parameter {key!r}.")
            setattr(self, key, value)
        return self
