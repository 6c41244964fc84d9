"""Linear count-min sketches over keyed hashes: what a member computes per window, and how it is queried."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mamori.analytics.keys import ConsortiumKey
from mamori.errors import ConfigError

__all__ = ["CountMinSketch"]


class CountMinSketch:
    """A count-min sketch (``depth`` rows of ``width`` int64 cells) whose hash functions are keyed.

    Sketches of the same shape and key are linear: the cell-wise sum of members' sketches is the sketch of the
    union of their inputs, which is what secure aggregation computes.

    Parameters
    ----------
    width, depth : int
        Shape.
    table : numpy.ndarray or None, default=None
        Existing cells (shape ``(depth, width)``); zeros when None.
    """

    def __init__(self, width: int, depth: int, table: np.ndarray | None = None) -> None:
        self.width = width
        self.depth = depth
        if table is None:
            table = np.zeros((depth, width), dtype=np.int64)
        if table.shape != (depth, width):
            raise ConfigError(f"CountMinSketch: table has shape {table.shape}; expected {(depth, width)}")
        self.table = table

    def add(self, key: ConsortiumKey, kind: str, values: Sequence[str], counts: Sequence[int] | None = None,
            *, presence: bool = False) -> CountMinSketch:
        """Add items (with counts, or as presence: each distinct item adds 1 to its cells once).

        Parameters
        ----------
        key : ConsortiumKey
            The consortium key.
        kind : str
            Item kind.
        values : sequence of str
            Items (repeats allowed).
        counts : sequence of int or None, default=None
            Count per item; 1 each when None.
        presence : bool, default=False
            Set each cell touched by at least one item to 1 instead of counting (the sketch then sums, across
            banks, to an upper bound of the number of banks that saw an item).

        Returns
        -------
        CountMinSketch
            ``self``.
        """
        if not len(values):
            return self
        cells = key.cells(kind, values, self.width, self.depth)
        rows = np.broadcast_to(np.arange(self.depth), cells.shape)
        if presence:
            self.table[rows, cells] = 1
        else:
            w = np.ones(len(values), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
            np.add.at(self.table, (rows, cells), np.broadcast_to(w[:, None], cells.shape))
        return self

    def query(self, key: ConsortiumKey, kind: str, values: Sequence[str]) -> np.ndarray:
        """Estimate each item's count (the minimum over rows: never below the true count without noise).

        Parameters
        ----------
        key : ConsortiumKey
            The consortium key (without it the cells of an item are unknown).
        kind : str
            Item kind.
        values : sequence of str
            Items.

        Returns
        -------
        numpy.ndarray
            int64 estimates.
        """
        if not len(values):
            return np.zeros(0, dtype=np.int64)
        cells = key.cells(kind, values, self.width, self.depth)
        rows = np.broadcast_to(np.arange(self.depth), cells.shape)
        return self.table[rows, cells].min(axis=1)

    def flat(self) -> np.ndarray:
        """Return the cells as one int64 vector (what is secure-summed).

        Returns
        -------
        numpy.ndarray
        """
        return self.table.reshape(-1)

    @classmethod
    def from_flat(cls, vector: np.ndarray, width: int, depth: int) -> CountMinSketch:
        """Rebuild a sketch from :meth:`flat` output (e.g. the consortium sum).

        Parameters
        ----------
        vector : numpy.ndarray
            ``width * depth`` cells.
        width, depth : int
            Shape.

        Returns
        -------
        CountMinSketch
        """
        return cls(width, depth, np.asarray(vector, dtype=np.int64).reshape(depth, width).copy())
