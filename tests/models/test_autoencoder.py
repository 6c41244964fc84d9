from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mamori.errors import NotFittedError
from mamori.models import AutoencoderDetector


def _normal_and_anomalies() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(3000, 3))
    mixing = rng.normal(size=(3, 12))
    normal = (latent @ mixing + 0.05 * rng.normal(size=(3000, 12))).astype(np.float32)
    anomalies = rng.normal(scale=2.0, size=(100, 12)).astype(np.float32)
    return normal, anomalies


def test_anomalies_reconstruct_worse_than_normal_traffic() -> None:
    # Prepare
    normal, anomalies = _normal_and_anomalies()
    # Execute
    model = AutoencoderDetector(hidden_layers=(16, 3), epochs=10, batch_size=64, seed=0).fit(normal[:1500])
    scores = model.decision_function(np.vstack([normal[2500:], anomalies]))
    labels = np.r_[np.zeros(500), np.ones(100)]
    # Assert
    assert roc_auc_score(labels, scores) > 0.95
    np.testing.assert_allclose(model.score_samples(anomalies), -model.decision_function(anomalies))


def test_fit_with_labels_uses_only_benign_rows() -> None:
    # Prepare
    normal, anomalies = _normal_and_anomalies()
    X = np.vstack([normal, anomalies])
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalies))]
    # Execute
    model = AutoencoderDetector(epochs=1).fit(X, y)
    # Assert
    assert model.n_samples_seen_ == len(normal)


def test_weights_round_trip_and_fit_local() -> None:
    # Prepare
    normal, _ = _normal_and_anomalies()
    model = AutoencoderDetector(epochs=2, seed=1).fit(normal)
    # Execute
    twin = AutoencoderDetector(seed=5).set_weights(model.get_weights())
    before = twin.get_weights()
    twin.fit_local(normal, epochs=1, proximal_mu=0.1)
    # Assert
    np.testing.assert_array_equal(
        AutoencoderDetector().set_weights(model.get_weights()).decision_function(normal),
        model.decision_function(normal),
    )
    assert not np.array_equal(before[0], twin.get_weights()[0])
    with pytest.raises(NotFittedError):
        AutoencoderDetector().decision_function(normal)
