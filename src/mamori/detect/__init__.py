"""Live detection: the scoring model bundle, window state, alerts, batch and follow-a-log scoring, the HTTP API.

Public API: :class:`ScoringModel` (weights + feature spec + standardiser + threshold, one file),
:func:`train_scoring_model` / :func:`train_simulated_model`, :class:`ScoringConfig`, :class:`Scorer`,
:class:`WindowState`, :class:`Alert` and sinks, :class:`IndicatorIndex` (and :data:`CAMPAIGN_FEATURE`, the
shared-campaign column a model may read), :func:`score_path`,
:class:`LogFollower`, :func:`alerts_to_stix`, and :func:`create_app` (in :mod:`mamori.detect.api`).
"""

from mamori.detect.alerts import (
    Alert,
    AlertDeduplicator,
    AlertSink,
    JsonlAlertSink,
    MemoryAlertSink,
    WebhookAlertSink,
    guess_families,
)
from mamori.detect.batch import BatchSummary, score_path
from mamori.detect.bundle import BUNDLE_FORMAT, ScoringModel
from mamori.detect.config import ScoringConfig
from mamori.detect.follow import FollowCheckpoint, LogFollower
from mamori.detect.indicators import CAMPAIGN_FEATURE, IndicatorIndex
from mamori.detect.scorer import ScoredBatch, Scorer
from mamori.detect.sightings import alerts_to_stix
from mamori.detect.state import STATE_COLUMNS, StateStats, WindowState
from mamori.detect.training import train_scoring_model, train_simulated_model

__all__ = [
    "BUNDLE_FORMAT",
    "CAMPAIGN_FEATURE",
    "STATE_COLUMNS",
    "Alert",
    "AlertDeduplicator",
    "AlertSink",
    "BatchSummary",
    "FollowCheckpoint",
    "IndicatorIndex",
    "JsonlAlertSink",
    "LogFollower",
    "MemoryAlertSink",
    "ScoredBatch",
    "Scorer",
    "ScoringConfig",
    "ScoringModel",
    "StateStats",
    "WebhookAlertSink",
    "WindowState",
    "alerts_to_stix",
    "guess_families",
    "score_path",
    "train_scoring_model",
    "train_simulated_model",
]
