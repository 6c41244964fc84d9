"""Per-member matrices for a comparison: features, labels, families, and the time split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MemberData"]


@dataclass(frozen=True)
class MemberData:
    """One member's data for a comparison, already split in time.

    Parameters
    ----------
    name : str
        The member's id (``organization.id``).
    X_train, y_train, family_train : numpy.ndarray
        Training rows (float32, shape (n, d)), labels (0 benign, 1 attack) and attack family per row
        ("benign" for benign rows).
    X_calib : numpy.ndarray
        Benign rows held out of training, on which the member calibrates its own threshold.
    X_test, y_test, family_test : numpy.ndarray
        Test rows from the last days, never seen in training or calibration.
    units_train : numpy.ndarray or None, default=None
        Privacy unit (customer) of each training row, int64 shape (n,) (``mamori.federation.privacy_units``);
        needed only for record-level DP (``ComparisonConfig.record_dp``).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    family_train: np.ndarray
    X_calib: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    family_test: np.ndarray
    units_train: np.ndarray | None = None

    @property
    def n_train(self) -> int:
        """Number of training rows."""
        return int(self.X_train.shape[0])
