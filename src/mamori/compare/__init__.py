"""Compare training regimes — each member alone, federated, centralized — and report on them.

Used by ``mamori demo`` (the simulated consortium) and ``mamori bench`` (public datasets).
"""

from mamori.compare.config import ComparisonConfig
from mamori.compare.data import MemberData
from mamori.compare.demo import DemoConfig, run_demo, split_member
from mamori.compare.metrics import detection_metrics, family_metrics, tpr_at_fpr
from mamori.compare.report import write_report
from mamori.compare.runner import run_comparison
from mamori.compare.summary import describe_members, summarise

__all__ = [
    "ComparisonConfig",
    "DemoConfig",
    "MemberData",
    "describe_members",
    "detection_metrics",
    "family_metrics",
    "run_comparison",
    "run_demo",
    "split_member",
    "summarise",
    "tpr_at_fpr",
    "write_report",
]
