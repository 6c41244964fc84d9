"""The one interface every benchmark dataset is served through: train and test matrices with labels and categories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mamori.errors import ConfigError

__all__ = ["BenchDataset", "default_data_dir"]


def default_data_dir() -> Path:
    """Where the public datasets are read from: ``$MAMORI_DATA_DIR``, else ``../shared/data``.

    Returns
    -------
    pathlib.Path
        ``$MAMORI_DATA_DIR`` when set; otherwise ``shared/data`` beside the project checkout (found from the
        installed package, falling back to the working directory's parent).
    """
    env = os.environ.get("MAMORI_DATA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and candidate.exists():
            return candidate
    return Path.cwd().parent / "shared" / "data"


@dataclass(frozen=True)
class BenchDataset:
    """A labelled dataset split into a training pool (to be shared out among institutions) and a test set.

    Parameters
    ----------
    name : str
        Short name (``nsl-kdd``, ``csic``, ``sms`` or the generic mapping's name).
    X_train, y_train, category_train : numpy.ndarray
        Training rows (float32, shape (n, d)), labels (0 benign, 1 attack) and category per row (the attack
        name or type; the benign category for benign rows). The Dirichlet split runs over ``category_train``.
    X_test, y_test, category_test : numpy.ndarray
        The test rows; never used for training, calibration or any choice.
    feature_names : tuple of str
        One name per column.
    standardise : bool, default=True
        Whether models see consortium-standardised features (False for already normalised text vectors).
    unseen_categories : frozenset of str, default=frozenset()
        Test attack categories that never occur in training (reported separately).
    notes : dict, default={}
        How the split was made (counts removed by deduplication, sources, seeds) for the results file.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    category_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    category_test: np.ndarray
    feature_names: tuple[str, ...]
    standardise: bool = True
    unseen_categories: frozenset[str] = frozenset()
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            X = getattr(self, f"X_{part}")
            y = getattr(self, f"y_{part}")
            c = getattr(self, f"category_{part}")
            if X.ndim != 2 or X.shape[1] != len(self.feature_names):
                raise ConfigError(
                    f"BenchDataset {self.name!r}: X_{part} has shape {X.shape}, "
                    f"expected (n, {len(self.feature_names)})."
                )
            if not (len(X) == len(y) == len(c)):
                raise ConfigError(
                    f"BenchDataset {self.name!r}: X_{part}, y_{part}, category_{part} lengths differ "
                    f"({len(X)}, {len(y)}, {len(c)})."
                )
            if len(np.unique(y)) < 2:
                raise ConfigError(f"BenchDataset {self.name!r}: the {part} split needs both benign and attack rows.")

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return len(self.feature_names)

    def describe(self) -> dict[str, Any]:
        """Counts for the results file (rows, attacks, categories, unseen categories, notes)."""
        return {
            "name": self.name,
            "features": self.n_features,
            "train_rows": int(len(self.y_train)),
            "train_attacks": int(self.y_train.sum()),
            "test_rows": int(len(self.y_test)),
            "test_attacks": int(self.y_test.sum()),
            "train_categories": int(len(np.unique(self.category_train))),
            "unseen_test_categories": sorted(self.unseen_categories),
            "unseen_test_attacks": int(np.isin(self.category_test, list(self.unseen_categories)).sum()),
            "notes": self.notes,
        }
