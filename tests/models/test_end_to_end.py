"""From hand-built events to a trained classifier: the features carry the attack signal."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score
from toy_events import toy_bank

from mamori.features import FeatureStats, Standardizer, extract_features, labels_from_events
from mamori.models import AttackClassifier, AutoencoderDetector, calibrate_threshold, evaluate_scores, explain


def test_classifier_on_toy_bank_beats_chance_by_far() -> None:
    # Prepare: two banks' days; consortium-wide standardisation from merged stats
    train, test = toy_bank(seed=0), toy_bank(seed=10)
    f_train, f_test = extract_features(train), extract_features(test)
    y_train, _ = labels_from_events(train)
    y_test, families = labels_from_events(test)
    stats = FeatureStats.merge([FeatureStats.from_matrix(f_train.X), FeatureStats.from_matrix(f_test.X)])
    scaler = Standardizer().fit_stats(stats)
    X_train, X_test = scaler.transform(f_train.X), scaler.transform(f_test.X)
    # Execute
    model = AttackClassifier(epochs=10, seed=0).fit(X_train, y_train)
    scores = model.decision_function(X_test)
    threshold = calibrate_threshold(scores[y_test == 0], 0.01, confidence=0.5)
    metrics = evaluate_scores(y_test, scores, threshold)
    # Assert
    base_rate = y_test.mean()
    assert metrics["pr_auc"] > 0.9 > 10 * base_rate
    assert metrics["recall"] > 0.9
    stuffing = np.flatnonzero(families == "credential_stuffing")[-1]
    top = explain(model, X_test[stuffing : stuffing + 1], f_test.spec, top_k=10)[0]
    assert top.score > threshold and len(top.top) > 0


def test_label_free_autoencoder_on_toy_bank() -> None:
    train, test = toy_bank(seed=0), toy_bank(seed=10)
    f_train, f_test = extract_features(train), extract_features(test)
    y_train, _ = labels_from_events(train)
    y_test, _ = labels_from_events(test)
    scaler = Standardizer().fit(f_train.X[y_train == 0])
    model = AutoencoderDetector(epochs=10, seed=0).fit(scaler.transform(f_train.X[y_train == 0]))
    scores = model.decision_function(scaler.transform(f_test.X))
    assert average_precision_score(y_test, scores) > 0.8
