"""Adapters of the public datasets (skipped when /work/shared/data is absent, unless MAMORI_REQUIRE_DATA=1)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mamori.bench import csic_events, csic_request_key, load_dataset
from mamori_testing import require_dataset


def test_csic_key_matches_get_and_post_twins() -> None:
    keys = csic_request_key(
        pl.Series(["/a.jsp", "/a.jsp", "/a.jsp"]),
        pl.Series(["id=1&x=%27+OR", None, "id=2"]),
        pl.Series([None, "id=1&x=%27+or", None]),
    )
    assert keys[0] == keys[1] != keys[2]


def test_nsl_kdd_official_split_with_unseen_types() -> None:
    folder = require_dataset("NSL_KDD.zip").parent
    ds = load_dataset("nsl-kdd", data_dir=folder, max_train=3000)
    assert ds.X_train.shape == (3000, ds.n_features) and ds.X_test.shape[0] == 22_544
    assert int(ds.y_test.sum()) == 12_833
    assert {"apache2", "mscan", "saint"} <= ds.unseen_categories
    assert "neptune" not in ds.unseen_categories
    assert np.isfinite(ds.X_train).all()


@pytest.mark.slow
def test_csic_split_never_tests_on_a_training_twin() -> None:
    folder = require_dataset("csic_dataset.zip").parent
    events, notes = csic_events(folder, seed=0)
    assert notes["requests_read"] == 97_065
    assert notes["removed_duplicates"] > 0
    assert notes["distinct_requests"] == events.height
    train_keys = set(events.filter(~pl.col("_test"))["_key"].to_list())
    test_keys = set(events.filter(pl.col("_test"))["_key"].to_list())
    assert not train_keys & test_keys
    # The GET and POST forms of one request share a key (so they can never straddle the split).
    assert events["_key"].n_unique() == events.height
    again, _ = csic_events(folder, seed=0)
    assert again["_test"].to_list() == events["_test"].to_list()


def test_sms_dedupes_and_splits() -> None:
    folder = require_dataset("sms_spam_collection/SMSSpamCollection").parent.parent
    ds = load_dataset("sms", data_dir=folder)
    assert ds.notes["messages_read"] == 5_574
    assert ds.notes["removed_duplicates"] > 0
    assert not ds.standardise
    assert 0.1 < ds.y_test.mean() < 0.16
