"""A federated isolation forest: every member grows trees on its own believed-normal rows; the consortium averages.

An isolation forest scores a row by how few random axis-aligned splits isolate it from a sample of normal rows
(Liu, Ting, Zhou 2008). Unlike a reconstruction error it needs no gradient training and no feature scaling, and
it is what catches most of NSL-KDD's unseen attack types at a low false-positive rate. Here no member's rows
leave the member: each member fits scikit-learn's ``IsolationForest`` on its own benign rows and shares only the
fitted trees; the consortium's score is the mean normalised path length over every member's trees, each member
weighted by its benign row count (a count the consortium already sums). Members grow trees in proportion to those
counts (``n_estimators`` in all), so the consortium's forest stands for the one a single party would grow on the
pooled rows.

Privacy caveat: trees are not aggregates. Every split threshold lies between the smallest and the largest value
of that feature among the member's sampled rows in that node, and the deepest nodes hold one or a few rows, so a
member's trees reveal intervals that contain some of its own rows' feature values (an outlying row's values most
precisely). Share them only within a consortium whose members may see such coarse per-row information, or not
at all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from mamori.errors import ConfigError, NotFittedError
from mamori.models._allocation import allocate_by_rows
from mamori.models.rarity import CategoryRarity

__all__ = ["FederatedIsolationForest", "average_path_length"]

logger = logging.getLogger(__name__)

_EULER = 0.5772156649015329


def average_path_length(n: int) -> float:
    """Average path length of an unsuccessful search in a binary search tree of ``n`` rows, ``c(n)``.

    Parameters
    ----------
    n : int
        Rows in the tree's sample.

    Returns
    -------
    float
        ``2 H(n - 1) - 2 (n - 1) / n`` (0 for ``n <= 1``, 1 for ``n == 2``): the path length that normalises
        isolation depths.
    """
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + _EULER) - 2.0 * (n - 1.0) / n


class FederatedIsolationForest:
    """Isolation forests grown by each member on its own benign rows; one consortium score.

    Parameters
    ----------
    n_estimators : int, default=200
        Trees of the whole consortium, shared among members in proportion to their benign rows
        (:meth:`allocate`; every member grows at least one).
    max_samples : int, default=256
        Rows sampled for each tree (fewer if the member holds fewer).
    max_features : float, default=1.0
        Share of the features each tree may split on (scikit-learn's ``max_features``; 1.0: all).
    seed : int, default=0
        Seeds every member's forest (member ``k`` uses ``seed * 1000 + k``).
    rarity : CategoryRarity or None, default=None
        Dense rarity columns of the one-hot fields, appended before the trees see a row
        (:class:`~mamori.models.rarity.CategoryRarity`). :meth:`fit` fits it from the members' benign counts; on the
        deployment path (:meth:`fit_member` / :meth:`combine`) fit it first — one secure sum of the counts.

    Attributes
    ----------
    members_ : list of sklearn.ensemble.IsolationForest
        One fitted forest per member (what each member shares).
    weights_ : numpy.ndarray
        Each member's share of the consortium's benign rows.

    Notes
    -----
    ``decision_function`` is ``c(256)`` times the weighted mean over members of ``E[h(x)] / c(psi_k)`` —
    the mean normalised isolation depth, expressed in edges of a 256-row tree — negated, so higher is more
    anomalous. Members with fewer rows than ``max_samples`` grow shallower trees; normalising each member's
    depth by its own ``c(psi_k)`` keeps them comparable.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: int = 256,
        seed: int = 0,
        max_features: float = 1.0,
        rarity: CategoryRarity | None = None,
    ) -> None:
        if int(n_estimators) < 1:
            raise ConfigError(f"FederatedIsolationForest: n_estimators must be >= 1; got {n_estimators!r}.")
        if int(max_samples) < 2:
            raise ConfigError(f"FederatedIsolationForest: max_samples must be >= 2; got {max_samples!r}.")
        if not 0.0 < float(max_features) <= 1.0:
            raise ConfigError(f"FederatedIsolationForest: max_features must be in (0, 1]; got {max_features!r}.")
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.max_features = float(max_features)
        self.seed = int(seed)
        self.rarity = rarity

    def _encode(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        return self.rarity.transform(X) if self.rarity is not None else X

    def allocate(self, counts: Sequence[float]) -> np.ndarray:
        """Trees per member: ``n_estimators`` shared in proportion to benign rows (largest remainder, >= 1 each).

        Parameters
        ----------
        counts : sequence of float
            Each member's benign training rows (one secure sum gives the total).

        Returns
        -------
        numpy.ndarray
            Trees per member (int); sums to ``max(n_estimators, len(counts))``.
        """
        return allocate_by_rows(self.n_estimators, counts, "FederatedIsolationForest.allocate")

    def fit_member(self, X_benign: Any, index: int = 0, n_trees: int | None = None) -> IsolationForest:
        """What one member computes and shares: a forest on its own benign rows.

        Parameters
        ----------
        X_benign : array-like
            Shape ``(n, n_features)``, ``n >= 2``: rows the member believes normal.
        index : int, default=0
            The member's index (seeds its forest).
        n_trees : int or None, default=None
            Trees to grow (:meth:`allocate`); None: ``n_estimators``.

        Returns
        -------
        sklearn.ensemble.IsolationForest
            The member's fitted forest.
        """
        X = np.asarray(X_benign, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] < 2:
            raise ConfigError("FederatedIsolationForest.fit_member: needs a 2-D array of at least 2 benign rows.")
        X = self._encode(X)
        forest = IsolationForest(
            n_estimators=int(n_trees or self.n_estimators),
            max_samples=min(self.max_samples, X.shape[0]),
            max_features=self.max_features,
            random_state=self.seed * 1000 + int(index),
        )
        return forest.fit(X)

    def combine(self, forests: Sequence[IsolationForest], counts: Sequence[float]) -> FederatedIsolationForest:
        """The consortium's model: the members' forests, weighted by their benign row counts.

        Parameters
        ----------
        forests : sequence of sklearn.ensemble.IsolationForest
            From :meth:`fit_member`, one per member.
        counts : sequence of float
            Each member's benign training rows.

        Returns
        -------
        FederatedIsolationForest
            ``self``.
        """
        w = np.asarray(counts, dtype=np.float64)
        if len(forests) == 0 or len(forests) != len(w) or not np.all(w > 0):
            raise ConfigError("FederatedIsolationForest.combine: one positive row count per member forest needed.")
        self.members_ = list(forests)
        self.weights_ = w / w.sum()
        return self

    def fit(self, members: Sequence[Any], y: object = None) -> FederatedIsolationForest:
        """Fit every member's forest and combine them (a simulation of the consortium in one process).

        Parameters
        ----------
        members : sequence of array-like
            Each member's benign rows (members with fewer than 2 rows are skipped).
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        FederatedIsolationForest
            ``self``.
        """
        kept = [(k, np.asarray(X)) for k, X in enumerate(members) if len(X) >= 2]
        if not kept:
            raise ConfigError("FederatedIsolationForest.fit: no member holds 2 benign rows.")
        counts = [len(X) for _k, X in kept]
        if self.rarity is not None:
            self.rarity.fit([X for _k, X in kept])
        trees = self.allocate(counts)
        return self.combine([self.fit_member(X, k, int(t)) for (k, X), t in zip(kept, trees, strict=True)], counts)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the anomaly score: the negated mean normalised isolation depth (higher is more anomalous).

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, preprocessed as the members' rows were.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64, in edges of a 256-row tree (about -12 to 0).

        Raises
        ------
        NotFittedError
            Before :meth:`fit` / :meth:`combine`.
        """
        if not hasattr(self, "members_"):
            raise NotFittedError("FederatedIsolationForest: call fit(...) or combine(...) first.")
        X = self._encode(X)
        depth = np.zeros(X.shape[0], dtype=np.float64)
        for forest, w in zip(self.members_, self.weights_, strict=True):
            # scikit-learn's score_samples is -2 ** (-E[h] / c(psi)): recover the normalised depth E[h] / c(psi).
            s = -forest.score_samples(X).astype(np.float64)
            depth += w * -np.log2(np.clip(s, 1e-300, None))
        return -average_path_length(256) * depth
