from __future__ import annotations

import numpy as np
import pytest

from mamori.errors import NotFittedError, SchemaError
from mamori.features import FeatureStats, Standardizer


def _members() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.lognormal(i, 1.0, size=(200 * (i + 1), 6)) for i in range(3)]


def test_merge_equals_stats_of_pooled_rows() -> None:
    # Prepare
    members = _members()
    # Execute
    merged = FeatureStats.merge(FeatureStats.from_matrix(X) for X in members)
    pooled = FeatureStats.from_matrix(np.vstack(members))
    # Assert
    for a, b in zip(merged.to_arrays(), pooled.to_arrays(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(merged.mean, np.vstack(members).mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(merged.std, np.vstack(members).std(axis=0), rtol=1e-8)


def test_merge_on_an_instance_includes_it() -> None:
    a, b, c = (FeatureStats.from_matrix(X) for X in _members())
    np.testing.assert_allclose(a.merge([b, c]).count, FeatureStats.merge([a, b, c]).count)
    np.testing.assert_allclose((a + b + c).total, FeatureStats.merge([a, b, c]).total)


def test_summable_vector_round_trips_and_adds() -> None:
    # Prepare
    a, b = (FeatureStats.from_matrix(X) for X in _members()[:2])
    # Execute: what a secure sum would compute
    summed = FeatureStats.from_summable(a.to_summable() + b.to_summable())
    # Assert
    np.testing.assert_allclose(summed.mean, (a + b).mean)
    np.testing.assert_allclose(summed.var, (a + b).var)


def test_federated_standardizer_equals_pooled_one() -> None:
    # Prepare
    members = _members()
    merged = FeatureStats.merge([FeatureStats.from_matrix(X) for X in members])
    # Execute
    federated = Standardizer(clip=None).fit_stats(merged)
    central = Standardizer(clip=None).fit(np.vstack(members))
    # Assert
    np.testing.assert_allclose(federated.transform(members[0]), central.transform(members[0]), rtol=1e-5)


def test_standardizer_clips_and_handles_constant_columns() -> None:
    # Prepare
    X = np.zeros((100, 2))
    X[:, 1] = np.arange(100)
    X[0, 1] = 1e6
    # Execute
    Z = Standardizer(clip=3.0).fit_transform(X)
    # Assert
    assert Z.dtype == np.float32
    assert np.abs(Z).max() <= 3.0
    assert (Z[:, 0] == 0).all()


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        Standardizer().transform(np.zeros((1, 2)))
    with pytest.raises(SchemaError):
        FeatureStats.merge([FeatureStats.from_matrix(np.zeros((2, 2))), FeatureStats.from_matrix(np.zeros((2, 3)))])
    with pytest.raises(SchemaError):
        FeatureStats.merge([])
    with pytest.raises(SchemaError):
        Standardizer().fit(np.zeros((3, 2))).transform(np.zeros((3, 4)))
