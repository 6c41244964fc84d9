"""Federated training on Flower: members train on their own data, only weights travel.

The public API hides Flower: a member implements :class:`LocalTrainer` (or wraps an estimator in
:class:`EstimatorTrainer`), :func:`run_federation` drives Flower's ``ServerApp`` with FedAvg or
FedProx over an in-process runtime and returns a :class:`FederationResult` with per-round reports.
Privacy: ``FederationConfig(secure_aggregation=True)`` aggregates with Flower's SecAgg+,
``FederationConfig(member_dp=MemberDPConfig(...))`` adds member-level DP, :class:`DPSGDTrainer` trains a
member with customer-level DP-SGD, and :func:`privacy_spends` turns a round into privacy-ledger rows.
Importing this package turns Flower's telemetry and update check off.
"""

import os as _os

# Flower reads these when its modules are imported and when it starts; mamori never phones home.
_os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
_os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"

from mamori.federation.accounting import (  # noqa: E402
    GaussianAccountant,
    PrivacySpend,
    calibrate_noise,
    central_dp_epsilon,
    dpsgd_epsilon,
)
from mamori.federation.config import FederationConfig  # noqa: E402
from mamori.federation.dpsgd import DPSGDTrainer, RecordDPConfig, event_privacy_units, privacy_units  # noqa: E402
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
from mamori.federation.privacy import (  # noqa: E402
    MemberDPConfig,
    SecureAggregationConfig,
    member_dp_noise,
    privacy_spends,
)
from mamori.federation.report import FederationResult, MemberRound, RoundReport  # noqa: E402
from mamori.federation.robust import ClippedTrainer, RobustConfig, recommended_robust_config  # noqa: E402
from mamori.federation.run import CheckpointCallback, RoundCallback, run_federation  # noqa: E402
from mamori.federation.schedule import lr_factor  # noqa: E402
from mamori.federation.trainer import (  # noqa: E402
    EstimatorTrainer,
    FederatedEstimator,
    LocalTrainer,
    ScaffoldTrainer,
)
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
    "DPSGDTrainer",
    "EstimatorTrainer",
    "FederatedEstimator",
    "FederationConfig",
    "FederationResult",
    "FreeRiderTrainer",
    "GaussianAccountant",
    "LabelFlippingTrainer",
    "LocalTrainer",
    "MemberDPConfig",
    "MemberRound",
    "ModelReplacementTrainer",
    "PrivacySpend",
    "RecordDPConfig",
    "RobustConfig",
    "RoundCallback",
    "RoundReport",
    "ScaffoldTrainer",
    "SecureAggregationConfig",
    "SignFlippingTrainer",
    "UpdateCheckReport",
    "UpdateStats",
    "audit_update_check",
    "backdoor_success_rate",
    "calibrate_noise",
    "central_dp_epsilon",
    "check_updates",
    "dpsgd_epsilon",
    "event_privacy_units",
    "lr_factor",
    "make_malicious",
    "member_dp_noise",
    "privacy_spends",
    "privacy_units",
    "recommended_robust_config",
    "run_federation",
    "weights_hash",
]
