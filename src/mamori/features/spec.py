"""Names and groups of the feature columns, and the matrix that carries them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mamori.errors import SchemaError

__all__ = ["FeatureSpec", "FeatureMatrix"]


@dataclass(frozen=True)
class FeatureSpec:
    """The name and group of every column of a feature matrix, in order.

    Parameters
    ----------
    names : tuple of str
        Column names, unique.
    groups : tuple of str
        The group of each column (``"request"``, ``"lexical"``, ``"ngram_path"``, ``"ip"``, ...).
    log1p : tuple of bool
        Whether the column holds ``log1p`` of a non-negative count or duration.
    config_json : str, default=""
        The :class:`~mamori.features.FeatureConfig` that produced the columns, as JSON.
    """

    names: tuple[str, ...]
    groups: tuple[str, ...]
    log1p: tuple[bool, ...]
    config_json: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.groups) == len(self.log1p)):
            raise SchemaError(
                f"FeatureSpec: names ({len(self.names)}), groups ({len(self.groups)}) and log1p "
                f"({len(self.log1p)}) must have the same length."
            )
        index = {name: i for i, name in enumerate(self.names)}
        if len(index) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise SchemaError(f"FeatureSpec: duplicate column names {dupes}.")
        object.__setattr__(self, "_index", index)

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Return the position of column ``name``.

        Parameters
        ----------
        name : str
            A column name.

        Returns
        -------
        int
            Its index.

        Raises
        ------
        SchemaError
            If there is no such column.
        """
        try:
            return self._index[name]
        except KeyError:
            raise SchemaError(f"FeatureSpec: no column named {name!r}; see FeatureSpec.names.") from None

    def columns_in_group(self, group: str) -> list[int]:
        """Return the indices of the columns of ``group``.

        Parameters
        ----------
        group : str
            A group name.

        Returns
        -------
        list of int
            Column indices, in order.
        """
        return [i for i, g in enumerate(self.groups) if g == group]

    @property
    def group_names(self) -> list[str]:
        """The distinct groups, in column order."""
        return list(dict.fromkeys(self.groups))

    def fingerprint(self) -> str:
        """Return a SHA-256 of the names, groups and config: equal fingerprints mean compatible matrices.

        Returns
        -------
        str
            64 hex digits.
        """
        payload = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable description.

        Returns
        -------
        dict
            Keys ``names``, ``groups``, ``log1p``, ``config``.
        """
        return {
            "names": list(self.names),
            "groups": list(self.groups),
            "log1p": list(self.log1p),
            "config": self.config_json,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSpec:
        """Rebuild a spec from :meth:`to_dict` output.

        Parameters
        ----------
        data : dict
            As returned by :meth:`to_dict`.

        Returns
        -------
        FeatureSpec
            The spec.
        """
        return cls(
            names=tuple(data["names"]),  # type: ignore[arg-type]
            groups=tuple(data["groups"]),  # type: ignore[arg-type]
            log1p=tuple(bool(v) for v in data["log1p"]),  # type: ignore[attr-defined]
            config_json=str(data.get("config", "")),
        )

    def subset(self, indices: Sequence[int]) -> FeatureSpec:
        """Return the spec of the selected columns.

        Parameters
        ----------
        indices : sequence of int
            Column indices.

        Returns
        -------
        FeatureSpec
            The spec of those columns, in the given order.
        """
        return FeatureSpec(
            names=tuple(self.names[i] for i in indices),
            groups=tuple(self.groups[i] for i in indices),
            log1p=tuple(self.log1p[i] for i in indices),
            config_json=self.config_json,
        )


@dataclass(frozen=True)
class FeatureMatrix:
    """A float32 feature matrix aligned with the rows of the events it came from.

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n_events, spec.n_features)``, dtype float32; row ``i`` describes input event ``i``.
    spec : FeatureSpec
        Names and groups of the columns.
    """

    X: np.ndarray
    spec: FeatureSpec

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.X.shape[1] != self.spec.n_features:
            raise SchemaError(
                f"FeatureMatrix: X has shape {self.X.shape}, expected (n, {self.spec.n_features}) for its spec."
            )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of ``X``."""
        return (int(self.X.shape[0]), int(self.X.shape[1]))

    def column(self, name: str) -> np.ndarray:
        """Return one column by name.

        Parameters
        ----------
        name : str
            A column name of the spec.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_events,)``.
        """
        return self.X[:, self.spec.index(name)]

    def to_polars(self) -> object:
        """Return the matrix as a polars DataFrame with the spec's column names.

        Returns
        -------
        polars.DataFrame
            One Float32 column per feature.
        """
        import polars as pl

        return pl.from_numpy(self.X, schema=list(self.spec.names))
