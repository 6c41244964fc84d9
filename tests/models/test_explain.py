from __future__ import annotations

import numpy as np

from mamori.features import FeatureSpec
from mamori.models import AttackClassifier, AutoencoderDetector, explain


def _spec(d: int) -> FeatureSpec:
    return FeatureSpec(tuple(f"f{i}" for i in range(d)), ("g",) * d, (False,) * d)


def test_classifier_explanation_names_the_responsible_feature(separable: tuple[np.ndarray, np.ndarray]) -> None:
    # Prepare: attacks differ from benign only in feature 3
    X, y = separable
    model = AttackClassifier(epochs=15, seed=0).fit(X, y)
    attacks = X[y == 1][:20]
    # Execute
    explanations = explain(model, attacks, _spec(8), top_k=3)
    # Assert
    assert len(explanations) == 20
    assert all(e.top[0].name == "f3" for e in explanations)
    assert all(e.top[0].contribution > 0 for e in explanations)
    np.testing.assert_allclose([e.score for e in explanations], model.decision_function(attacks))
    assert explanations[0].to_dict()["top"][0]["name"] == "f3"


def test_integrated_gradients_add_up_to_the_logit_difference(separable: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = separable
    model = AttackClassifier(epochs=5, seed=0, dropout=0.0).fit(X, y)
    row = X[y == 1][:1]
    e = explain(model, row, _spec(8), top_k=8, steps=128)[0]
    from mamori.models.explain import _integrated_gradients

    total = _integrated_gradients(model, row, 128).sum()
    baseline = model.decision_function(np.zeros((1, 8)))[0]
    assert abs(total - (e.score - baseline)) < 0.05


def test_autoencoder_explanation_names_the_broken_feature() -> None:
    # Prepare: normal traffic is low-rank; one test row has feature 5 far off
    rng = np.random.default_rng(0)
    normal = (rng.normal(size=(3000, 2)) @ rng.normal(size=(2, 10))).astype(np.float32)
    model = AutoencoderDetector(hidden_layers=(16, 2), epochs=20, seed=0).fit(normal)
    odd = normal[:5].copy()
    odd[:, 5] += 8.0
    # Execute
    explanations = explain(model, odd, _spec(10), top_k=2)
    # Assert
    assert all(e.top[0].name == "f5" for e in explanations)
    np.testing.assert_allclose([e.score for e in explanations], model.decision_function(odd))


class _Linear:
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return 2.0 * X[:, 1] - X[:, 0]


def test_any_scorer_gets_an_occlusion_explanation() -> None:
    e = explain(_Linear(), np.array([[1.0, 3.0, 0.0]], dtype=np.float32), _spec(3), top_k=3)[0]
    assert [c.name for c in e.top] == ["f1"]
