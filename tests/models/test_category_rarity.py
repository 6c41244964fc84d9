"""Benign rarity of one-hot fields: counts each member can share, and a forest that sees never-seen values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mamori.errors import ConfigError, NotFittedError
from mamori.features import FeatureStats, Standardizer
from mamori.models import CategoryRarity, FederatedIsolationForest, one_hot_groups

NAMES = ["bytes", "proto=tcp", "proto=udp", "service=http", "service=ftp", "service=ssh", "service=irc", "count"]


def _rows(services: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows of NAMES: two numeric columns, one-hot protocol (always tcp) and service."""
    X = np.zeros((len(services), len(NAMES)))
    X[:, 0] = rng.normal(size=len(services))
    X[:, 1] = 1.0
    X[np.arange(len(services)), 3 + services] = 1.0
    X[:, 7] = rng.normal(size=len(services))
    return X


def test_one_hot_groups_follow_the_field_equals_value_names() -> None:
    assert one_hot_groups(NAMES) == [[1, 2], [3, 4, 5, 6]]
    assert one_hot_groups(["a", "b"]) == []


def test_members_counts_summed_equal_the_pooled_fit_and_unseen_values_are_rarest() -> None:
    rng = np.random.default_rng(0)
    services = rng.choice(3, size=900, p=[0.8, 0.15, 0.05])  # irc (3) never occurs among benign rows
    X = _rows(services, rng)
    groups = one_hot_groups(NAMES)
    members = [X[:100], X[100:600], X[600:]]
    federated = CategoryRarity(groups, copies=2).combine([CategoryRarity(groups).member_counts(m) for m in members])
    pooled = CategoryRarity(groups, copies=2).fit([X])
    for a, b in zip(federated.rarity_, pooled.rarity_, strict=True):
        np.testing.assert_allclose(a, b)
    assert federated.counts_[1].tolist() == np.bincount(services, minlength=4).tolist()
    rarity = federated.rarity_[1]
    assert rarity[3] == rarity.max() and rarity[0] == rarity.min()  # never seen > rare > common
    out = federated.transform(_rows(np.array([0, 3]), rng))
    assert out.shape == (2, len(NAMES) + 2 * 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, -2:], [[rarity[0]] * 2, [rarity[3]] * 2], rtol=1e-6)  # service copies last


def test_z_scored_one_hot_columns_give_the_same_rarity_as_raw_ones() -> None:
    rng = np.random.default_rng(1)
    X = _rows(rng.choice(3, size=400), rng)
    Z = Standardizer().fit_stats(FeatureStats.from_matrix(X)).transform(X)
    groups = one_hot_groups(NAMES)
    raw = CategoryRarity(groups).fit([X])
    z = CategoryRarity(groups).fit([Z])
    np.testing.assert_allclose(raw.transform(X)[:, len(NAMES) :], z.transform(Z)[:, len(NAMES) :])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=60), st.integers(1, 4))
def test_rarity_is_finite_positive_and_ordered_by_count(services: list[int], copies: int) -> None:
    rng = np.random.default_rng(2)
    model = CategoryRarity(one_hot_groups(NAMES), copies=copies).fit([_rows(np.array(services), rng)])
    counts, rarity = model.counts_[1], model.rarity_[1]
    assert np.all(np.isfinite(rarity)) and np.all(rarity > 0)
    order = np.argsort(counts, kind="stable")
    assert np.all(np.diff(rarity[order]) <= 1e-12)  # more benign rows with a value: less rare


def test_bad_input_is_refused_with_the_shape_expected() -> None:
    with pytest.raises(ConfigError, match="non-empty one-hot group"):
        CategoryRarity([])
    with pytest.raises(ConfigError, match="copies must be >= 1"):
        CategoryRarity([[0, 1]], copies=0)
    model = CategoryRarity(one_hot_groups(NAMES))
    with pytest.raises(NotFittedError):
        model.transform(np.zeros((1, len(NAMES))))
    with pytest.raises(ConfigError, match=r"more than 6 columns; got shape \(3, 4\)"):
        model.member_counts(np.zeros((3, 4)))


def test_a_forest_with_rarity_isolates_rows_of_a_rare_service() -> None:
    names = ["a", "b"] + [f"service={i}" for i in range(12)]
    rng = np.random.default_rng(0)
    share = 1 / np.arange(1, 13) ** 2  # Zipf-like services: the rarest holds 0.4% of benign rows
    services = rng.choice(12, size=3000, p=share / share.sum())
    X = np.zeros((3600, len(names)))
    X[:, :2] = rng.normal(size=(3600, 2))
    X[np.arange(3600), 2 + np.r_[services, np.full(600, 11)]] = 1.0
    members, held_out, rarest = [X[:1000], X[1000:2400]], X[2400:3000], X[3000:]
    flagged = {}
    for name, rarity in (("plain", None), ("rarity", CategoryRarity(one_hot_groups(names), copies=5))):
        forest = FederatedIsolationForest(n_estimators=60, seed=0, rarity=rarity).fit(members)
        threshold = np.quantile(forest.decision_function(held_out), 0.95)
        flagged[name] = float(np.mean(forest.decision_function(rarest) > threshold))
    # One-hot columns are 12 of 14 split candidates and each isolates one value; the dense column isolates "rare".
    assert flagged["rarity"] > 0.9
    assert flagged["plain"] < 0.5
