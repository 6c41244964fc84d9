"""Adversarial assessment of trained models: privacy leakage (membership inference), evasion, poisoning."""

from mamori.assess.privacy import (
    AttackResult,
    MembershipAuditConfig,
    MembershipAuditReport,
    audit_membership,
    tpr_at_fpr,
)

__all__ = [
    "AttackResult",
    "MembershipAuditConfig",
    "MembershipAuditReport",
    "audit_membership",
    "tpr_at_fpr",
]
