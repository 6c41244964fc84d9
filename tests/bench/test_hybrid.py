"""The hybrid detector: summable benign calibration, and attacks nobody labelled still caught."""

from __future__ import annotations

import numpy as np
import pytest

from mamori.errors import ConfigError, NotFittedError
from mamori.models import (
    AttackClassifier,
    AutoencoderDetector,
    HybridDetector,
    MessageClassifier,
    ReconstructionScorer,
    ScoreStats,
    TextFeaturizer,
)


def test_score_stats_merge_equals_pooled_histogram() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(1, 2, size=300)
    merged = ScoreStats.merge([ScoreStats.from_scores(a), ScoreStats.from_scores(b)])
    pooled = ScoreStats.from_scores(np.concatenate([a, b]))
    assert np.array_equal(merged.counts, pooled.counts)
    assert np.array_equal(ScoreStats.from_summable(merged.to_summable()).counts, merged.counts)


def test_tail_probability_is_strictly_decreasing_beyond_benign_scores() -> None:
    stats = ScoreStats.from_scores(np.random.default_rng(1).normal(size=5000))
    p = stats.tail_probability(np.linspace(-1, 10, 50))
    assert np.all(np.diff(p) < 0)
    assert 0.1 < stats.tail_probability(np.array([1.0]))[0] < 0.2


_MIX = np.random.default_rng(42).normal(size=(2, 8))


def _clusters(n: int, centre: float, rng: np.random.Generator) -> np.ndarray:
    """Rows on a 2-D plane in 8-D (so an autoencoder reconstructs benign rows well), shifted along feature 0."""
    X = (rng.normal(0, 1, size=(n, 2)) @ _MIX + rng.normal(0, 0.05, size=(n, 8))).astype(np.float32)
    X[:, 0] += centre
    return X


def test_hybrid_catches_an_attack_family_missing_from_the_labels() -> None:
    rng = np.random.default_rng(0)
    benign = _clusters(2000, 0.0, rng)
    seen = _clusters(400, 4.0, rng)
    unseen = _clusters(300, 0.0, rng)
    unseen[:, [3, 5]] += 8.0  # a new attack: nothing like benign traffic, nothing like the labelled attacks either
    X = np.concatenate([benign[:1600], seen])
    y = np.array([0] * 1600 + [1] * 400)
    clf = AttackClassifier(hidden_layers=(16,), epochs=15, seed=0).fit(X, y)
    ae = AutoencoderDetector(hidden_layers=(8, 3), epochs=30, seed=0).fit(benign[:1600])
    calib = benign[1600:1800]
    test_benign = benign[1800:]
    scorer = ReconstructionScorer(ae).fit(calib)
    hybrid = HybridDetector(clf, scorer)
    with pytest.raises(NotFittedError):
        hybrid.decision_function(test_benign)
    hybrid.calibrate(calib)
    threshold = np.quantile(hybrid.decision_function(test_benign), 0.99)
    assert (hybrid.decision_function(unseen) > threshold).mean() > 0.9
    assert (hybrid.decision_function(seen) > threshold).mean() > 0.9
    clf_threshold = np.quantile(clf.decision_function(test_benign), 0.99)
    assert (clf.decision_function(unseen) > clf_threshold).mean() < 0.5

    # The federated calibration (sums merged from two members) gives the same scores as the pooled one.
    s1, s2 = scorer.member_sums(calib[:100]), scorer.member_sums(calib[100:])
    fed_scorer = ReconstructionScorer(ae).fit_sums(s1[0] + s2[0], s1[1] + s2[1])
    fed = HybridDetector(clf, fed_scorer)
    parts = [fed.member_stats(calib[:100]), fed.member_stats(calib[100:])]
    fed.calibrate_stats(ScoreStats.merge(p[0] for p in parts), ScoreStats.merge(p[1] for p in parts))
    assert np.allclose(fed.decision_function(unseen), hybrid.decision_function(unseen))

    # Sum fusion: -log10 of the product of both tail probabilities. It still catches the family only the
    # autoencoder sees, a little less surely than max fusion: that family also carries the classifier's benign noise.
    summed = HybridDetector(clf, scorer, fusion="sum").calibrate(calib)
    s_c, s_a = summed.component_scores(unseen)
    assert np.allclose(summed.decision_function(unseen), s_c + s_a)
    threshold = np.quantile(summed.decision_function(test_benign), 0.99)
    assert (summed.decision_function(unseen) > threshold).mean() > 0.8
    assert (summed.decision_function(seen) > threshold).mean() > 0.9
    with pytest.raises(ConfigError, match="fusion"):
        HybridDetector(clf, scorer, fusion="mean")


def test_message_classifier_learns_spam_words() -> None:
    ham = [f"see you at {h} tonight, ok?" for h in range(60)] + [f"call me later about dinner {i}" for i in range(60)]
    spam = [f"WINNER! claim your £{p}00 prize now, txt WIN to 8{p}123" for p in range(60)]
    spam += [f"free entry: visit www.win{p}.com to claim cash" for p in range(60)]
    feats = TextFeaturizer(word_buckets=512, char_buckets=512)
    X = feats.transform(ham + spam)
    assert X.shape == (240, 512 + 512 + 7) and len(feats.feature_names()) == X.shape[1]
    y = np.array([0] * 120 + [1] * 120)
    model = MessageClassifier(epochs=15, seed=0).fit(X, y)
    test = feats.transform(["claim your free prize now, txt WIN", "ok see you at dinner"])
    logits = model.decision_function(test)
    assert logits[0] > 0 > logits[1]


def test_top_aggregate_ranks_one_broken_column_above_many_small_deviations() -> None:
    """An attack that changes a single column normal traffic never uses must not drown in the others' noise."""
    rng = np.random.default_rng(3)
    benign = rng.normal(0, 1, size=(1200, 40)).astype(np.float32)
    benign[:, 39] = 0.0  # a column that is always zero on normal traffic (a parameter nobody sends)
    ae = AutoencoderDetector(hidden_layers=(16, 8), epochs=20, seed=0).fit(benign[:1000])
    noisy = rng.normal(0, 1.6, size=(200, 40)).astype(np.float32)  # slightly unusual everywhere
    noisy[:, 39] = 0.0
    broken = rng.normal(0, 1, size=(200, 40)).astype(np.float32)
    broken[:, 39] = 3.0  # ordinary everywhere but one column
    mean_scorer = ReconstructionScorer(ae).fit(benign[1000:])
    top_scorer = ReconstructionScorer(ae, aggregate="top", top_k=3).fit(benign[1000:])
    assert np.median(top_scorer.decision_function(broken)) > np.median(top_scorer.decision_function(noisy))
    assert np.median(mean_scorer.decision_function(broken)) < np.median(mean_scorer.decision_function(noisy))


def test_reconstruction_scorer_rejects_an_unknown_aggregate() -> None:
    ae = AutoencoderDetector(hidden_layers=(4, 2), epochs=1, seed=0).init_weights(6)
    with pytest.raises(ConfigError, match="aggregate"):
        ReconstructionScorer(ae, aggregate="median")


def test_denoising_autoencoder_is_seeded_and_checks_its_noise() -> None:
    X = np.random.default_rng(5).normal(size=(300, 6)).astype(np.float32)
    a = AutoencoderDetector(hidden_layers=(4, 2), epochs=3, seed=0, noise=0.1).fit(X)
    b = AutoencoderDetector(hidden_layers=(4, 2), epochs=3, seed=0, noise=0.1).fit(X)
    plain = AutoencoderDetector(hidden_layers=(4, 2), epochs=3, seed=0).fit(X)
    assert np.array_equal(a.decision_function(X), b.decision_function(X))
    assert not np.array_equal(a.decision_function(X), plain.decision_function(X))
    assert a.get_params()["noise"] == 0.1
    with pytest.raises(ConfigError, match="noise"):
        AutoencoderDetector(noise=-1.0).fit(X)
