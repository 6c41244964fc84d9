"""The verdict of a comparison: the figures a consortium's steering group asks for first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from mamori.compare.data import MemberData

__all__ = ["describe_members", "summarise"]

LOW_AND_SLOW = "credential_stuffing_low_slow"


def describe_members(members: Sequence[MemberData]) -> list[dict[str, Any]]:
    """Row counts and attack events per family for each member's training and test splits (counts only)."""
    rows = []
    for m in members:
        rows.append(
            {
                "bank": m.name,
                "train_events": int(m.X_train.shape[0]),
                "calibration_events": int(m.X_calib.shape[0]),
                "test_events": int(m.X_test.shape[0]),
                "train_attacks": int(m.y_train.sum()),
                "test_attacks": int(m.y_test.sum()),
                "train_families": dict(sorted(Counter(m.family_train[m.y_train == 1].tolist()).items())),
                "test_families": dict(sorted(Counter(m.family_test[m.y_test == 1].tolist()).items())),
            }
        )
    return rows


def summarise(regimes: dict[str, Any], members: Sequence[MemberData]) -> dict[str, Any]:
    """Headline figures: federated vs centralized and local-only, unseen families, low-and-slow recall.

    Parameters
    ----------
    regimes : dict
        The output of :func:`~mamori.compare.runner.run_comparison`.
    members : sequence of MemberData
        The members it ran on.

    Returns
    -------
    dict
        ``fed_over_central`` (mean federated PR-AUC over banks / mean centralized), ``fed_beats_local_mean``,
        ``smallest_bank`` and its PR-AUCs, ``unseen_families`` (for each bank, attack families its own training
        days never held, scored as they hit the other banks, at the bank's own threshold), ``low_and_slow``.
    """
    local, fed, central = regimes["local"], regimes["federated"], regimes["centralized"]
    smallest = min(members, key=lambda m: m.n_train)
    low_slow = []
    for m in members:
        if LOW_AND_SLOW in fed["banks"][m.name]["families"]:
            low_slow.append(
                {
                    "bank": m.name,
                    "n": fed["banks"][m.name]["families"][LOW_AND_SLOW]["n"],
                    "recall_local": local["banks"][m.name]["families"][LOW_AND_SLOW]["recall"],
                    "recall_federated": fed["banks"][m.name]["families"][LOW_AND_SLOW]["recall"],
                    "recall_centralized": central["banks"][m.name]["families"][LOW_AND_SLOW]["recall"],
                }
            )
    return {
        "fed_over_central": fed["mean_pr_auc"] / central["mean_pr_auc"],
        "fed_beats_local_mean": fed["mean_pr_auc"] > local["mean_pr_auc"],
        "smallest_bank": smallest.name,
        "smallest_local_pr_auc": local["banks"][smallest.name]["overall"]["pr_auc"],
        "smallest_fed_pr_auc": fed["banks"][smallest.name]["overall"]["pr_auc"],
        "fed_beats_local_smallest": fed["banks"][smallest.name]["overall"]["pr_auc"]
        > local["banks"][smallest.name]["overall"]["pr_auc"],
        "unseen_families": regimes.get("unseen_families", []),
        "low_and_slow": low_slow,
    }
