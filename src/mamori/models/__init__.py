"""Detection models (PyTorch): the attack classifier, the autoencoder anomaly detector, thresholds, explanations.

Nothing here knows about Flower: federated code moves weights with :meth:`get_weights` / :meth:`set_weights`
and trains with :meth:`fit_local`.
"""

from mamori.models.autoencoder import AutoencoderDetector
from mamori.models.base import TorchDetector
from mamori.models.classifier import AttackClassifier
from mamori.models.evaluate import evaluate_by_family, evaluate_scores, tpr_at_fpr
from mamori.models.explain import Explanation, FeatureContribution, explain
from mamori.models.forest import FederatedIsolationForest, average_path_length
from mamori.models.hybrid import HybridDetector, ReconstructionScorer, ScoreStats, anomaly_log_score
from mamori.models.kmeans import FederatedKMeans
from mamori.models.rarity import CategoryRarity, one_hot_groups
from mamori.models.text import MessageClassifier, TextFeaturizer
from mamori.models.threshold import ThresholdCalibrator, calibrate_threshold

__all__ = [
    "AttackClassifier",
    "AutoencoderDetector",
    "CategoryRarity",
    "Explanation",
    "FeatureContribution",
    "FederatedIsolationForest",
    "FederatedKMeans",
    "HybridDetector",
    "MessageClassifier",
    "ReconstructionScorer",
    "ScoreStats",
    "TextFeaturizer",
    "ThresholdCalibrator",
    "TorchDetector",
    "anomaly_log_score",
    "average_path_length",
    "calibrate_threshold",
    "evaluate_by_family",
    "evaluate_scores",
    "explain",
    "one_hot_groups",
    "tpr_at_fpr",
]
