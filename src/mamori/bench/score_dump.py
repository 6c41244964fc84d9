"""Write a bench run's per-row test scores to a ``.npz`` file, for error analysis outside the bench."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mamori.bench.dataset import BenchDataset
from mamori.errors import ConfigError, SchemaError

__all__ = ["save_test_scores", "load_test_scores"]


def save_test_scores(path: Path, dataset: BenchDataset, scores: Mapping[str, np.ndarray]) -> Path:
    """Save every model's raw test scores beside the test labels and categories.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npz`` file to write (its folder must exist).
    dataset : BenchDataset
        The dataset the scores were computed on: its ``y_test`` and ``category_test`` are saved as ``y_test`` and
        ``category_test``, so a row's scores, label and category share an index.
    scores : mapping of str to numpy.ndarray
        Result key (``"hybrid/federated"``, ...) to one score per test row (``run_bench(keep_test_scores=True)``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        If a score array does not hold one value per test row, or a key clashes with the label arrays.
    """
    n = len(dataset.y_test)
    arrays: dict[str, np.ndarray] = {
        "y_test": np.asarray(dataset.y_test),
        "category_test": np.asarray(dataset.category_test).astype(str),
    }
    for key, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if key in arrays:
            raise ConfigError(f"save_test_scores: score key {key!r} clashes with the saved label arrays.")
        if values.shape != (n,):
            raise ConfigError(
                f"save_test_scores: scores {key!r} have shape {values.shape}; expected ({n},), one per test row of "
                f"{dataset.name!r}."
            )
        arrays[key] = values
    with path.open("wb") as fh:  # a file handle: np.savez would append ".npz" to a path given another suffix
        np.savez_compressed(fh, **arrays)
    return path


def load_test_scores(path: Path) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_test_scores`.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npz`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        ``y_test``, ``category_test`` and one score array per result key.

    Raises
    ------
    SchemaError
        If the file is not such an ``.npz`` (another file, a truncated copy, pickled objects).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            scores = {key: data[key] for key in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise SchemaError(f"load_test_scores: {path} is not a scores file of `mamori bench --save-scores` "
                          f"({type(exc).__name__}: {exc}).") from exc
    if "y_test" not in scores:
        raise SchemaError(f"load_test_scores: {path} holds no y_test array; not a file of "
                          "`mamori bench --save-scores`.")
    return scores
