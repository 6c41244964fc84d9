"""Events to feature matrices: lexical, hashed n-gram and causal windowed behaviour features.

Public API: :func:`extract_features`, :class:`FeatureConfig`, :class:`FeatureSpec`, :class:`FeatureMatrix`,
:func:`labels_from_events` (training/evaluation only), :class:`FeatureStats` and :class:`Standardizer`
(federated normalisation), :func:`hash_ngrams`, :class:`OnlineFeatures` (the same rows one event at a time, from
per-entity aggregates).
"""

from mamori.features.config import FeatureConfig
from mamori.features.extract import extract_features, labels_from_events
from mamori.features.ngrams import hash_ngrams
from mamori.features.online import OnlineFeatures
from mamori.features.spec import FeatureMatrix, FeatureSpec
from mamori.features.stats import FeatureStats, Standardizer

__all__ = [
    "FeatureConfig",
    "FeatureMatrix",
    "FeatureSpec",
    "FeatureStats",
    "OnlineFeatures",
    "Standardizer",
    "extract_features",
    "hash_ngrams",
    "labels_from_events",
]
