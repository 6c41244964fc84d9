"""Federated training on Flower: members train on their own data, only weights travel.

The public API hides Flower: a member implements :class:`LocalTrainer` (or wraps an estimator in
:class:`EstimatorTrainer`), :func:`run_federation` drives Flower's ``ServerApp`` with FedAvg or
FedProx over an in-process runtime and returns a :class:`FederationResult` with per-round reports.
Importing this package turns Flower's telemetry and update check off.
"""

import os as _os

# Flower reads these when its modules are imported and when it starts; mamori never phones home.
_os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
_os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

from mamori.federation.config import FederationConfig  # noqa: E402
from mamori.federation.poisoning import (  # noqa: E402
    ALIETrainer,
    BackdoorTrigger,
    FreeRiderTrainer,
    LabelFlippingTrainer,
    ModelReplacementTrainer,
    SignFlippingTrainer,
    backdoor_success_rate,
    make_malicious,
)
from mamori.federation.report import FederationResult, MemberRound, RoundReport  # noqa: E402
from mamori.federation.robust import ClippedTrainer, RobustConfig, recommended_robust_config  # noqa: E402
from mamori.federation.run import CheckpointCallback, RoundCallback, run_federation  # noqa: E402
from mamori.federation.trainer import EstimatorTrainer, FederatedEstimator, LocalTrainer  # noqa: E402
from mamori.federation.update_check import (  # noqa: E402
    UpdateCheckReport,
    UpdateStats,
    audit_update_check,
    check_updates,
)
from mamori.federation.weights import weights_hash  # noqa: E402

__all__ = [
    "ALIETrainer",
    "BackdoorTrigger",
    "CheckpointCallback",
    "ClippedTrainer",
    "EstimatorTrainer",
    "FederatedEstimator",
    "FederationConfig",
    "FederationResult",
    "FreeRiderTrainer",
    "LabelFlippingTrainer",
    "LocalTrainer",
    "MemberRound",
    "ModelReplacementTrainer",
    "RobustConfig",
    "RoundCallback",
    "RoundReport",
    "SignFlippingTrainer",
    "UpdateCheckReport",
    "UpdateStats",
    "audit_update_check",
    "backdoor_success_rate",
    "check_updates",
    "make_malicious",
    "recommended_robust_config",
    "run_federation",
    "weights_hash",
]
