"""A federated k-means distance detector: every member clusters its own believed-normal rows; centroids are pooled.

A row far from every cluster of normal traffic is anomalous. Each member runs scikit-learn's ``KMeans`` on its
own benign rows (already standardised with the consortium's statistics) and shares only its centroids; the
consortium's score is the log Euclidean distance from a row to the nearest centroid of any member. Like the
isolation forest (:mod:`mamori.models.forest`) it needs no labels and no gradient training, and unlike the
autoencoder it has no reconstruction target to overfit; it looks at the whole row at once, where the forest splits
one feature at a time, so the two label-free views err on different rows.

Members receive clusters in proportion to their benign row counts (``n_clusters`` in all; one secure sum of counts
gives the total), so the pooled centroids stand for a clustering of the pooled rows.

Privacy caveat: centroids are not secure-aggregated sums. A centroid is the mean of the member's rows in that
cluster, so it reveals the typical traffic of one of the member's groups of rows, and a cluster of few rows comes
close to revealing those rows. Members therefore drop (never share) every centroid whose cluster holds fewer than
``min_cluster_size`` rows (a row far from all of a member's shared centroids then simply scores as anomalous), but
even a centroid of many rows is more than an aggregate over the whole consortium. Share them only within a
consortium whose members may see such per-member summaries, or switch the member off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin_min

from mamori.errors import ConfigError, NotFittedError
from mamori.models._allocation import allocate_by_rows

__all__ = ["FederatedKMeans"]

logger = logging.getLogger(__name__)


class FederatedKMeans:
    """Distance to the nearest centroid of every member's k-means clustering of its own benign rows.

    Parameters
    ----------
    n_clusters : int, default=100
        Centroids of the whole consortium, shared among members in proportion to their benign rows
        (:meth:`allocate`; every member gets at least one).
    min_cluster_size : int, default=5
        A member shares a centroid only if its cluster holds at least this many rows (privacy: a centroid of
        one or two rows is those rows). Members with fewer benign rows share nothing.
    seed : int, default=0
        Seeds every member's clustering (member ``k`` uses ``seed * 1000 + k``).

    Attributes
    ----------
    centroids_ : numpy.ndarray
        Shape ``(n_centroids, n_features)``: every member's shared centroids, stacked.
    member_sizes_ : list of int
        Centroids each member shared.
    """

    def __init__(self, n_clusters: int = 100, min_cluster_size: int = 5, seed: int = 0) -> None:
        if int(n_clusters) < 1:
            raise ConfigError(f"FederatedKMeans: n_clusters must be >= 1; got {n_clusters!r}.")
        if int(min_cluster_size) < 1:
            raise ConfigError(f"FederatedKMeans: min_cluster_size must be >= 1; got {min_cluster_size!r}.")
        self.n_clusters = int(n_clusters)
        self.min_cluster_size = int(min_cluster_size)
        self.seed = int(seed)

    def allocate(self, counts: Sequence[float]) -> np.ndarray:
        """Clusters per member: ``n_clusters`` shared in proportion to benign rows (largest remainder, >= 1 each).

        Parameters
        ----------
        counts : sequence of float
            Each member's benign training rows (one secure sum gives the total).

        Returns
        -------
        numpy.ndarray
            Clusters per member (int); sums to ``max(n_clusters, len(counts))``.
        """
        return allocate_by_rows(self.n_clusters, counts, "FederatedKMeans.allocate")

    def fit_member(self, X_benign: Any, index: int = 0, n_clusters: int | None = None) -> np.ndarray:
        """What one member computes and shares: the centroids of its benign rows' clusters that are large enough.

        Parameters
        ----------
        X_benign : array-like
            Shape ``(n, n_features)``: rows the member believes normal, standardised.
        index : int, default=0
            The member's index (seeds its clustering).
        n_clusters : int or None, default=None
            Clusters to fit (:meth:`allocate`); None: ``n_clusters``. At most ``n // min_cluster_size``.

        Returns
        -------
        numpy.ndarray
            Shape ``(k, n_features)``, float64, ``k >= 0``: centroids of clusters of at least
            ``min_cluster_size`` rows.
        """
        X = np.asarray(X_benign, dtype=np.float64)
        if X.ndim != 2:
            raise ConfigError("FederatedKMeans.fit_member: needs a 2-D array of benign rows.")
        k = min(int(n_clusters or self.n_clusters), X.shape[0] // self.min_cluster_size)
        if k < 1:
            return np.empty((0, X.shape[1]))
        km = KMeans(n_clusters=k, n_init=2, random_state=self.seed * 1000 + int(index)).fit(X)
        sizes = np.bincount(km.labels_, minlength=k)
        return km.cluster_centers_[sizes >= self.min_cluster_size]

    def combine(self, centroids: Sequence[np.ndarray]) -> FederatedKMeans:
        """The consortium's model: every member's shared centroids.

        Parameters
        ----------
        centroids : sequence of numpy.ndarray
            From :meth:`fit_member`, one per member.

        Returns
        -------
        FederatedKMeans
            ``self``.
        """
        parts = [np.asarray(c, dtype=np.float64) for c in centroids]
        if not parts or sum(len(c) for c in parts) == 0:
            raise ConfigError("FederatedKMeans.combine: no member shared a centroid.")
        self.centroids_ = np.concatenate([c for c in parts if len(c)])
        self.member_sizes_ = [len(c) for c in parts]
        return self

    def fit(self, members: Sequence[Any], y: object = None) -> FederatedKMeans:
        """Cluster every member's benign rows and combine the centroids (the consortium simulated in one process).

        Parameters
        ----------
        members : sequence of array-like
            Each member's benign rows, standardised (empty members are skipped).
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        FederatedKMeans
            ``self``.
        """
        kept = [(k, np.asarray(X)) for k, X in enumerate(members) if len(X) > 0]
        if not kept:
            raise ConfigError("FederatedKMeans.fit: no member holds a benign row.")
        ks = self.allocate([len(X) for _k, X in kept])
        return self.combine([self.fit_member(X, k, int(n)) for (k, X), n in zip(kept, ks, strict=True)])

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the anomaly score: the log distance to the nearest centroid (higher is more anomalous).

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, standardised as the members' rows were.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64: ``log(distance + 1e-3)`` (a log so that the score histograms of
            the calibration resolve small and large distances alike).

        Raises
        ------
        NotFittedError
            Before :meth:`fit` / :meth:`combine`.
        """
        if not hasattr(self, "centroids_"):
            raise NotFittedError("FederatedKMeans: call fit(...) or combine(...) first.")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[0] == 0:
            return np.empty(0)
        _idx, dist = pairwise_distances_argmin_min(X, self.centroids_)
        return np.log(dist + 1e-3)
