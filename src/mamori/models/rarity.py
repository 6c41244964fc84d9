"""How rare each row's categorical values are among the consortium's benign rows: dense columns for tree models.

An isolation forest picks a feature at random at every split. A categorical field one-hot encoded into dozens of
sparse columns (NSL-KDD's 70 services, 11 flags) spends most of those picks on columns that each separate one
value, and a value no benign row had is invisible to it (its column never varies among the training rows). One
dense column per field — ``-log`` of the share of benign rows with the row's value, add-one smoothed — lets one
split set every rare value apart: rows of a rare service isolate in a few splits, and a never-seen value scores at
least like the rarest seen one (the trees do not extrapolate beyond it). scikit-learn's encoders (``TargetEncoder``,
``OrdinalEncoder``) need the raw categories and labels in one place; here each member counts its own benign rows
and only the per-value counts are summed (a secure sum), so the encoding is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mamori.errors import ConfigError, NotFittedError

__all__ = ["CategoryRarity", "one_hot_groups"]


def one_hot_groups(feature_names: Sequence[str]) -> list[list[int]]:
    """Column indices of every one-hot group, by the ``field=value`` naming of the bench's feature matrices.

    Parameters
    ----------
    feature_names : sequence of str
        The matrix's column names; ``"service=http"`` belongs to group ``service``.

    Returns
    -------
    list of list of int
        One list of column indices per field, in order of first appearance; fields with one column are kept (a
        value the training rows never had then still counts as rare).
    """
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(feature_names):
        field, sep, _value = str(name).partition("=")
        if sep:
            groups.setdefault(field, []).append(j)
    return list(groups.values())


class CategoryRarity:
    """Appends, per one-hot field, ``-log`` of the benign share of the row's value (``copies`` times).

    Parameters
    ----------
    groups : sequence of sequence of int
        Column indices of each one-hot field (:func:`one_hot_groups`). A row's value is the group's largest column,
        so z-scored one-hot columns work as well as raw 0/1 (the active column is the only positive one).
    copies : int, default=5
        How many copies of each rarity column to append. An isolation forest draws split features uniformly;
        copies raise the share of splits spent on the fields (5 chosen on KDDTrain+ validation rows,
        docs/benchmarks.md).

    Attributes
    ----------
    counts_ : list of numpy.ndarray
        Per field, the consortium's benign rows with each value (the secure sum of :meth:`member_counts`).
    rarity_ : list of numpy.ndarray
        Per field, ``-log((count + 1) / (rows + values))`` of each value.
    """

    def __init__(self, groups: Sequence[Sequence[int]], copies: int = 5) -> None:
        self.groups = [[int(j) for j in g] for g in groups]
        if not self.groups or any(len(g) == 0 for g in self.groups):
            raise ConfigError("CategoryRarity: needs at least one non-empty one-hot group of columns.")
        if int(copies) < 1:
            raise ConfigError(f"CategoryRarity: copies must be >= 1; got {copies!r}.")
        self.copies = int(copies)

    def _values(self, X: np.ndarray) -> list[np.ndarray]:
        if X.ndim != 2 or X.shape[1] <= max(max(g) for g in self.groups):
            raise ConfigError(
                f"CategoryRarity: expected a 2-D matrix with more than {max(max(g) for g in self.groups)} columns; "
                f"got shape {X.shape}."
            )
        return [X[:, g].argmax(axis=1) for g in self.groups]

    def member_counts(self, X_benign: Any) -> list[np.ndarray]:
        """What one member shares: how many of its benign rows hold each value of each field.

        Parameters
        ----------
        X_benign : array-like
            Shape ``(n, n_features)``: the member's rows it believes normal.

        Returns
        -------
        list of numpy.ndarray
            Per field, counts (float64) of length ``len(group)``.
        """
        X = np.asarray(X_benign, dtype=np.float64)
        return [
            np.bincount(v, minlength=len(g)).astype(np.float64)
            for v, g in zip(self._values(X), self.groups, strict=True)
        ]

    def combine(self, counts: Sequence[Sequence[np.ndarray]]) -> CategoryRarity:
        """Sum the members' counts (what a secure sum reveals) and set each value's rarity.

        Parameters
        ----------
        counts : sequence
            One :meth:`member_counts` result per member.

        Returns
        -------
        CategoryRarity
            ``self``.
        """
        if len(counts) == 0:
            raise ConfigError("CategoryRarity.combine: no member counts.")
        total = [np.sum([np.asarray(c[i], dtype=np.float64) for c in counts], axis=0) for i in range(len(self.groups))]
        self.counts_ = total
        self.rarity_ = [-np.log((t + 1.0) / (t.sum() + len(t))) for t in total]
        return self

    def fit(self, members: Sequence[Any], y: object = None) -> CategoryRarity:
        """Count every member's benign rows and combine (a simulation of the consortium in one process).

        Parameters
        ----------
        members : sequence of array-like
            Each member's benign rows.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        CategoryRarity
            ``self``.
        """
        return self.combine([self.member_counts(X) for X in members])

    def transform(self, X: Any) -> np.ndarray:
        """Return ``X`` with ``copies`` rarity columns per field appended.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, the columns :attr:`groups` index.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples, n_features + copies * len(groups))``, float32.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` / :meth:`combine`.
        """
        if not hasattr(self, "rarity_"):
            raise NotFittedError("CategoryRarity: call fit(...) or combine(...) first.")
        X = np.asarray(X, dtype=np.float32)
        cols = [r[v] for r, v in zip(self.rarity_, self._values(X), strict=True)]
        extra = np.repeat(np.column_stack(cols), self.copies, axis=1) if cols else np.empty((len(X), 0))
        return np.hstack([X, extra.astype(np.float32)])
