"""Train each member alone, federated over Flower, and centralized on pooled data; judge all three alike."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mamori.compare.config import ComparisonConfig
from mamori.compare.data import MemberData
from mamori.compare.metrics import detection_metrics, family_metrics
from mamori.errors import ConfigError
from mamori.features import FeatureStats, Standardizer
from mamori.federation import (
    CheckpointCallback,
    DPSGDTrainer,
    EstimatorTrainer,
    FederationConfig,
    MemberRound,
    PrivacySpend,
    RoundReport,
    privacy_spends,
    run_federation,
)
from mamori.models import AttackClassifier, calibrate_threshold

__all__ = ["ProgressCallback", "run_comparison"]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: the CLI renders it as progress bars.
ProgressCallback = Callable[[str, int, int], None]

def _classifier(config: ComparisonConfig, epochs: int, *, private: bool = False) -> AttackClassifier:
    """The attack classifier; ``private`` gives the narrower network trained under record-level DP."""
    return AttackClassifier(
        hidden_layers=config.dp_hidden if private else config.hidden,
        epochs=epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
    )


def _judge(
    member: MemberData, scaler: Standardizer, score: Callable[[np.ndarray], np.ndarray], target_fpr: float
) -> dict[str, Any]:
    """Calibrate the member's own threshold on its benign calibration rows, then score its test rows."""
    threshold = calibrate_threshold(score(scaler.transform(member.X_calib)), target_fpr=target_fpr)
    scores = score(scaler.transform(member.X_test))
    return {
        "threshold": float(threshold),
        "overall": detection_metrics(member.y_test, scores, threshold),
        "families": family_metrics(member.y_test, member.family_test, scores, threshold),
    }


def _pool_families(per_bank: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Families over all banks: recall = flagged / events; PR-AUC = mean of the banks' family PR-AUCs."""
    pooled: dict[str, dict[str, float]] = {}
    for bank in per_bank.values():
        for family, m in bank["families"].items():
            acc = pooled.setdefault(family, {"n": 0, "flagged": 0, "_pr": [], "banks": 0})
            acc["n"] += m["n"]
            acc["flagged"] += m["flagged"]
            acc["_pr"].append(m["pr_auc"])
            acc["banks"] += 1
    for acc in pooled.values():
        prs = [p for p in acc.pop("_pr") if not np.isnan(p)]
        acc["pr_auc"] = float(np.mean(prs)) if prs else float("nan")
        acc["recall"] = acc["flagged"] / acc["n"] if acc["n"] else float("nan")
    return pooled


def _mean_pr_auc(per_bank: dict[str, dict[str, Any]]) -> float:
    values = [b["overall"]["pr_auc"] for b in per_bank.values() if not np.isnan(b["overall"]["pr_auc"])]
    return float(np.mean(values)) if values else float("nan")


def run_comparison(
    members: Sequence[MemberData],
    config: ComparisonConfig = ComparisonConfig(),
    *,
    progress: ProgressCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    on_privacy_spend: Callable[[PrivacySpend], None] | None = None,
) -> dict[str, Any]:
    """Compare local-only, federated and centralized training of the attack classifier.

    Every regime is trained for the same number of passes over the data (``rounds * local_epochs``), uses
    feature statistics merged federatedly from the members' counts and sums (local-only uses the member's
    own), and is judged the same way: each member calibrates its own threshold to ``config.target_fpr`` on
    its benign calibration rows, then scores its test rows.

    Parameters
    ----------
    members : sequence of MemberData
        At least two members, all with the same number of feature columns.
    config : ComparisonConfig, default=ComparisonConfig()
        Rounds, epochs, model size, target false-positive rate, seed.
    progress : callable or None, default=None
        ``progress(stage, done, total)`` after each unit of work.
    on_checkpoint : callable or None, default=None
        Receives ``(round, weights, sha256)`` of the global model after each federated round.
    on_privacy_spend : callable or None, default=None
        With ``config.record_dp``: receives each member's cumulative privacy spend after each round (a
        privacy-ledger row; the demo writes them to its store's ``PrivacyLedger``).

    Returns
    -------
    dict
        ``regimes`` (``local``, ``federated``, ``centralized``: per bank and per family metrics, seconds;
        the federated regime also has per-round history and bytes) — the ``regimes`` part of
        ``results.json``.

    Raises
    ------
    ConfigError
        If fewer than two members are given, their feature widths differ, or ``config.record_dp`` is set and a
        member has no ``units_train``.
    PrivacyBudgetError
        If a member's record-level DP budget would be exceeded (training stops).
    """
    if len(members) < 2:
        raise ConfigError(f"run_comparison: needs at least 2 members, got {len(members)}.")
    widths = {m.X_train.shape[1] for m in members}
    if len(widths) != 1:
        raise ConfigError(f"run_comparison: members' feature widths differ: {sorted(widths)}.")
    if config.record_dp is not None:
        missing = [m.name for m in members if m.units_train is None or len(m.units_train) != m.n_train]
        if missing:
            raise ConfigError(
                f"run_comparison: record-level DP needs each member's privacy units (MemberData.units_train, one per "
                f"training row); missing or of the wrong length for {missing}."
            )
    n_features = widths.pop()
    epochs = config.rounds * config.local_epochs
    report = progress or (lambda stage, done, total: None)

    # Federated normalisation: members share counts, sums and sums of squares, never rows.
    member_stats = [FeatureStats.from_matrix(m.X_train) for m in members]
    consortium_scaler = Standardizer().fit_stats(FeatureStats.merge(member_stats))

    results: dict[str, Any] = {}
    # regime -> bank -> (scaler, scoring function): kept to score other banks' attacks (see _unseen_families).
    scorers: dict[str, dict[str, tuple[Standardizer, Callable[[np.ndarray], np.ndarray]]]] = {}

    # (a) each member alone, with its own statistics.
    start = time.perf_counter()
    local: dict[str, Any] = {}
    for i, (m, stats) in enumerate(zip(members, member_stats, strict=True)):
        own_scaler = Standardizer().fit_stats(stats)
        model = _classifier(config, epochs).fit(own_scaler.transform(m.X_train), m.y_train)
        local[m.name] = _judge(m, own_scaler, model.decision_function, config.target_fpr)
        scorers.setdefault("local", {})[m.name] = (own_scaler, model.decision_function)
        report("local-only", i + 1, len(members))
    results["local"] = {"banks": local, "seconds": time.perf_counter() - start}

    # (b) federated over Flower.
    start = time.perf_counter()
    private = config.record_dp is not None
    seed_model = _classifier(config, config.local_epochs, private=private)
    seed_model.init_weights(n_features)
    trainers: list[EstimatorTrainer | DPSGDTrainer] = []
    # Standardised once: the federated members train on these, and the centralized model pools them.
    scaled_train = [consortium_scaler.transform(m.X_train) for m in members]
    for m, Z_train in zip(members, scaled_train, strict=True):
        est = _classifier(config, config.local_epochs, private=private)
        est.init_weights(n_features)
        if config.record_dp is not None:
            assert m.units_train is not None  # checked above
            trainers.append(
                DPSGDTrainer(
                    est,
                    Z_train,
                    m.y_train,
                    m.units_train,
                    consortium_scaler.transform(m.X_test),
                    m.y_test,
                    config.record_dp,
                    num_rounds=config.rounds,
                    name=m.name,
                )
            )
            continue
        trainers.append(
            EstimatorTrainer(
                est,
                Z_train,
                m.y_train,
                consortium_scaler.transform(m.X_test),
                m.y_test,
            )
        )
    fed_config = FederationConfig(
        strategy=config.strategy,
        proximal_mu=config.proximal_mu if config.strategy == "fedprox" else 0.0,
        num_rounds=config.rounds,
        local_epochs=config.local_epochs,
        min_train_nodes=len(members),
        min_available_nodes=len(members),
        min_evaluate_nodes=len(members),
        secure_aggregation=config.secure_aggregation,
        seed=config.seed,
    )

    spends: list[PrivacySpend] = []

    def on_round(r: RoundReport) -> None:
        for spend in privacy_spends(r, fed_config):
            spends.append(spend)
            if on_privacy_spend is not None:
                on_privacy_spend(spend)
        report("federated rounds", r.server_round, config.rounds)

    fed = run_federation(
        trainers,
        seed_model.get_weights(),
        fed_config,
        on_round=on_round,
        on_checkpoint=on_checkpoint,
        member_names=[m.name for m in members],
    )
    global_model = _classifier(config, config.local_epochs, private=private)
    global_model.init_weights(n_features)
    global_model.set_weights(fed.arrays)
    federated = {
        m.name: _judge(m, consortium_scaler, global_model.decision_function, config.target_fpr) for m in members
    }
    scorers["federated"] = {m.name: (consortium_scaler, global_model.decision_function) for m in members}
    rounds = [
        {
            "round": r.server_round,
            "loss": float("nan") if r.evaluate_loss is None else float(r.evaluate_loss),
            "pr_auc": float(r.evaluate_metrics.get("pr_auc", float("nan"))),
            "seconds": r.seconds,
            "bytes_down": r.bytes_down,
            "bytes_up": r.bytes_up,
            "hash": r.weights_hash,
            # per member (status, examples, loss, PR-AUC): the dashboard's per-member curves and rounds joined
            "members": [_member_round(m) for m in r.members],
        }
        for r in fed.history
    ]
    results["federated"] = {
        "banks": federated,
        "seconds": time.perf_counter() - start,
        "rounds": rounds,
        "bytes_total": int(sum(r["bytes_down"] + r["bytes_up"] for r in rounds)),
        "final_hash": fed.weights_hash,
        "strategy": config.strategy,
        "secure_aggregation": config.secure_aggregation,
        "record_dp": _privacy_summary(config, spends),
    }

    # (c) centralized on pooled data: the upper bound no real consortium may run.
    start = time.perf_counter()
    X_pool = np.concatenate(scaled_train)
    del trainers, scaled_train  # free the members' copies before the pooled one grows
    y_pool = np.concatenate([m.y_train for m in members])
    central_model = _classifier(config, epochs).fit(X_pool, y_pool)
    del X_pool
    central = {
        m.name: _judge(m, consortium_scaler, central_model.decision_function, config.target_fpr) for m in members
    }
    scorers["centralized"] = {m.name: (consortium_scaler, central_model.decision_function) for m in members}
    report("centralized", 1, 1)
    results["centralized"] = {"banks": central, "seconds": time.perf_counter() - start}

    for regime in results.values():
        regime["families"] = _pool_families(regime["banks"])
        regime["mean_pr_auc"] = _mean_pr_auc(regime["banks"])
    results["unseen_families"] = _unseen_families(members, results, scorers)
    # Not JSON: the federated model and the consortium's standardiser, for callers that save scoring bundles.
    results["_federated_artifacts"] = {"model": global_model, "standardizer": consortium_scaler}
    return results


def _member_round(m: MemberRound) -> dict[str, Any]:
    """One member's row of a round in ``results.json`` (NaN becomes None)."""
    pr_auc = m.evaluate_metrics.get("pr_auc")
    return {
        "member": m.member,
        "train_status": m.train_status,
        "evaluate_status": m.evaluate_status,
        "train_examples": m.train_examples,
        "evaluate_examples": m.evaluate_examples,
        "train_loss": _finite_or_none(m.train_metrics.get("train_loss")),
        "loss": _finite_or_none(m.evaluate_loss),
        "pr_auc": _finite_or_none(pr_auc),
    }


def _finite_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _privacy_summary(config: ComparisonConfig, spends: list[PrivacySpend]) -> dict[str, Any] | None:
    """The federated regime's record-level DP: settings and, per member, what the final round had spent."""
    if config.record_dp is None:
        return None
    last: dict[str, PrivacySpend] = {}
    for s in spends:
        if s.member not in last or s.server_round >= last[s.member].server_round:
            last[s.member] = s
    return {
        "settings": config.record_dp.model_dump(),
        "hidden": list(config.dp_hidden),  # the DP network is narrower than the regimes without DP
        "unit": "customer",
        "members": {
            name: {
                "epsilon": s.epsilon,
                "delta": s.delta,
                "mechanism": s.mechanism,
                "noise_multiplier": s.noise_multiplier,
                "steps": s.steps,
                "rounds": s.server_round,
            }
            for name, s in sorted(last.items())
        },
        "epsilon_spent": max((s.epsilon for s in last.values()), default=0.0),
    }


def _unseen_families(
    members: Sequence[MemberData],
    results: dict[str, Any],
    scorers: dict[str, dict[str, tuple[Standardizer, Callable[[np.ndarray], np.ndarray]]]],
) -> list[dict[str, Any]]:
    """Score, per bank, the attack families absent from its own training data, as they hit the other banks.

    The family's test-period events as they hit the *other* banks are scored with the bank's own model (local)
    or the global model, at the bank's own calibrated threshold: the question a bank asks is "if this attack
    reaches us tomorrow, do we alert?". Banks' route names differ, so this also tests transfer across banks.
    """
    rows = []
    for m in members:
        seen = set(m.family_train[m.y_train == 1].tolist())
        others = [o for o in members if o.name != m.name]
        families = sorted({f for o in others for f in o.family_test[o.y_test == 1].tolist()} - seen)
        for family in families:
            X = np.concatenate([o.X_test[(o.family_test == family) & (o.y_test == 1)] for o in others])
            row: dict[str, Any] = {"bank": m.name, "family": family, "n": int(X.shape[0])}
            for regime, by_bank in scorers.items():
                scaler, score = by_bank[m.name]
                threshold = results[regime]["banks"][m.name]["threshold"]
                row[f"recall_{regime}"] = float((score(scaler.transform(X)) > threshold).mean())
            rows.append(row)
    return rows
