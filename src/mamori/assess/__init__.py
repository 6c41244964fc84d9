"""Adversarial assessment of trained models: privacy leakage (membership inference), evasion, poisoning.

:func:`run_assessment` / :func:`write_assessment` produce the regulator-readable assessment behind
``mamori assess`` (``assessment.json``, ``assessment.html``, ``assessment.pdf``); :func:`load_demo` reads a
``mamori demo`` folder as its inputs; :func:`measure_poisoning` runs the small poisoning experiment and
:func:`inspect_pki` / :func:`inspect_store` read the security controls.
"""

from mamori.assess.constrained import ATTACKER_CONTROLS, controlled_columns, mimicry_evasion
from mamori.assess.controls import inspect_pki, inspect_store
from mamori.assess.demo import IN_TRAINING, DemoInputs, load_demo
from mamori.assess.evasion import ThresholdWrapper, gradient_evasion, hopskipjump_evasion
from mamori.assess.harden import harden_model
from mamori.assess.poisoning import BACKDOOR_TRIGGER, PoisoningConfig, measure_poisoning
from mamori.assess.privacy import (
    AttackResult,
    MembershipAuditConfig,
    MembershipAuditReport,
    audit_membership,
    clopper_pearson,
    pool_audit_runs,
    tpr_at_fpr,
)
from mamori.assess.report import (
    AssessConfig,
    find_chromium,
    print_pdf,
    render_html,
    run_assessment,
    write_assessment,
)

__all__ = [
    "ATTACKER_CONTROLS",
    "BACKDOOR_TRIGGER",
    "IN_TRAINING",
    "AssessConfig",
    "AttackResult",
    "DemoInputs",
    "MembershipAuditConfig",
    "MembershipAuditReport",
    "PoisoningConfig",
    "ThresholdWrapper",
    "audit_membership",
    "clopper_pearson",
    "controlled_columns",
    "find_chromium",
    "gradient_evasion",
    "harden_model",
    "hopskipjump_evasion",
    "inspect_pki",
    "inspect_store",
    "load_demo",
    "measure_poisoning",
    "mimicry_evasion",
    "pool_audit_runs",
    "print_pdf",
    "render_html",
    "run_assessment",
    "tpr_at_fpr",
    "write_assessment",
]
