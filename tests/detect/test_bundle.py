"""ScoringModel: one file holds weights, feature spec, standardiser statistics, threshold and family centroids."""

from __future__ import annotations

import numpy as np
import pytest

from mamori.detect import ScoringModel
from mamori.errors import SchemaError, StoreError
from mamori.store import ModelRegistry, open_store


def test_roundtrip_file_is_identical(tiny_model: ScoringModel, tmp_path) -> None:
    # Execute
    path = tiny_model.save(tmp_path / "m.npz")
    loaded = ScoringModel.load(path)

    # Assert
    assert loaded.sha256 == tiny_model.sha256
    assert loaded.spec.names == tiny_model.spec.names
    assert loaded.feature_config == tiny_model.feature_config
    assert loaded.threshold == tiny_model.threshold
    assert loaded.families == tiny_model.families
    X = np.random.default_rng(0).normal(size=(20, tiny_model.spec.n_features)).astype(np.float32)
    np.testing.assert_array_equal(loaded.detector().decision_function(X), tiny_model.detector().decision_function(X))


def test_not_a_bundle_is_a_schema_error(tmp_path, tiny_model: ScoringModel) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SchemaError, match="not a scoring-model bundle .not an .npz archive") as caught:
        ScoringModel.load(bad)
    assert "allow_pickle" not in str(caught.value)  # numpy's advice to unpickle an unknown file is not passed on
    truncated = tmp_path / "cut.npz"  # an upload broken off: a zip's start without its directory
    truncated.write_bytes(tiny_model.to_bytes()[:200])
    with pytest.raises(SchemaError, match="cut.npz.* is not a scoring-model bundle"):
        ScoringModel.load(truncated)
    with pytest.raises(SchemaError, match="cannot read"):
        ScoringModel.load(tmp_path / "missing.npz")


def test_with_weights_checks_shapes(tiny_model: ScoringModel) -> None:
    with pytest.raises(SchemaError, match="same architecture"):
        tiny_model.with_weights([np.zeros((2, 2))])
    new = tiny_model.with_weights([w * 0 for w in tiny_model.weights], version=7)
    assert new.version == 7 and new.threshold == tiny_model.threshold


def test_registry_bundle_and_bare_checkpoint(tiny_model: ScoringModel, tmp_path) -> None:
    # Prepare
    registry = ModelRegistry(open_store(f"sqlite:///{tmp_path / 'r.db'}"))

    # Execute: a whole bundle, then a bare global-model checkpoint as the federation registers each round
    digest = tiny_model.register(registry)
    from_bundle = ScoringModel.from_registry(registry, digest)
    arrays = [w + 1.0 for w in tiny_model.weights]
    registry.register(tiny_model.name, 5, arrays, {"round": 5})

    # Assert
    assert from_bundle.sha256 == tiny_model.sha256 or from_bundle.metadata["registry_sha256"] == digest
    with pytest.raises(StoreError, match="base="):
        ScoringModel.from_registry(registry, "latest", name=tiny_model.name)
    applied = ScoringModel.from_registry(registry, "latest", name=tiny_model.name, base=tiny_model)
    assert applied.version == 5
    np.testing.assert_array_equal(applied.weights[0], arrays[0])
    assert applied.threshold == tiny_model.threshold
