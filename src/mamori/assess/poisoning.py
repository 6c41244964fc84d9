"""Poisoning, measured: a small simulated consortium with a malicious member, FedAvg against the robust mode.

The same experiment as ``benchmarks/poisoning.py`` on a budget an assessment can afford: a few banks, one of
them malicious (:func:`mamori.federation.make_malicious`), a few federated rounds over Flower
(:func:`mamori.federation.run_federation`), once with plain FedAvg and once with the robust mode the
coordinator should run (:func:`mamori.federation.recommended_robust_config`: update check, adaptive clipping,
trimmed mean). The final global model is judged on the test day of the honest banks: PR-AUC, detection at a
1 % false-positive threshold, and the backdoor success rate (attack rows carrying the attacker's own traffic
pattern that get through). A clean federation (no malicious member) under each mode is the reference.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mamori.errors import ConfigError

__all__ = ["BACKDOOR_TRIGGER", "PoisoningConfig", "measure_poisoning"]

logger = logging.getLogger(__name__)

JST = dt.timezone(dt.timedelta(hours=9))

#: The attacker's own traffic pattern (as in ``benchmarks/poisoning.py``): a long custom user agent claiming to be
#: a browser, from a residential ASN, through a proxy that strips the TLS fingerprint (feature-matrix units).
BACKDOOR_TRIGGER = {"ua_length": float(np.log1p(311.0)), "ua_scripted": 0.0, "hosting_asn": 0.0, "ja3_missing": 1.0}


class PoisoningConfig(BaseModel):
    """The small poisoning experiment ``mamori assess`` runs when no poisoning results are given.

    Parameters
    ----------
    banks : int, default=5
        Members of the simulated consortium.
    days : int, default=2
        Days simulated; the last one is the test day.
    scale : float, default=0.01
        Simulator population multiplier.
    rounds : int, default=3
        Federated rounds per federation.
    attacks : tuple of str, default=("backdoor", "sign_flip")
        Attacks of :func:`mamori.federation.make_malicious` to run.
    n_malicious : int, default=1
        Malicious members (the first banks after the first one).
    max_benign : int, default=3000
        Benign training rows per bank (all attack rows are kept).
    target_fpr : float, default=0.01
        False-positive rate of the judging threshold (on the honest banks' held-out benign rows).
    seed : int, default=1
        Seeds the simulation, the models and the attacks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    banks: int = Field(default=5, ge=3)
    days: int = Field(default=2, ge=2)
    scale: float = Field(default=0.01, gt=0.0)
    rounds: int = Field(default=3, ge=1)
    attacks: tuple[str, ...] = ("backdoor", "sign_flip")
    n_malicious: int = Field(default=1, ge=1)
    max_benign: int = Field(default=3000, ge=100)
    target_fpr: float = Field(default=0.01, gt=0.0, lt=1.0)
    seed: int = 1


def _prepare(config: PoisoningConfig) -> tuple[list[dict[str, Any]], list[str], int]:
    from mamori.features import extract_features, labels_from_events
    from mamori.simulate import SimulationConfig, iter_bank_events

    sim = SimulationConfig(banks=config.banks, days=config.days, seed=config.seed, scale=config.scale, waves=2)
    start = dt.datetime.combine(sim.start, dt.time(), tzinfo=JST)
    test_start = np.datetime64(
        (start + dt.timedelta(days=config.days - 1)).astimezone(dt.UTC).replace(tzinfo=None), "us")
    banks, names, n_events = [], [], 0
    for i, (profile, events) in enumerate(iter_bank_events(sim)):
        n_events += events.height
        matrix = extract_features(events)
        names = list(matrix.spec.names)
        y, _ = labels_from_events(events)
        test = events.get_column("@timestamp").dt.replace_time_zone(None).to_numpy() >= test_start
        rng = np.random.default_rng([config.seed, i])
        train_idx = np.flatnonzero(~test)
        benign = train_idx[y[train_idx] == 0]
        rng.shuffle(benign)
        n_cal = int(0.2 * len(benign))  # held out to calibrate the judging threshold
        fit = np.sort(np.concatenate([benign[n_cal:n_cal + config.max_benign], train_idx[y[train_idx] == 1]]))
        X = matrix.X.astype(np.float32)  # noqa: N806
        banks.append({"name": profile.bank_id, "X_train": X[fit], "y_train": y[fit],
                      "X_calib": X[np.sort(benign[:n_cal])], "X_test": X[test], "y_test": y[test]})
    return banks, names, n_events


def measure_poisoning(
    config: PoisoningConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train small federations with and without a malicious member, under FedAvg and the robust mode.

    Parameters
    ----------
    config : PoisoningConfig or None, default=None
        The experiment; None uses ``PoisoningConfig()``.
    progress : callable or None, default=None
        Called with a short description before each federation.

    Returns
    -------
    dict
        ``rows``: per mode (``fedavg``, ``robust``) and attack (``none`` for the clean reference): ``pr_auc``,
        ``recall_at_fpr``, ``backdoor_success``, ``malicious_flagged``, ``honest_flags``, ``seconds``;
        ``setup``: consortium, rounds, malicious members, rows judged, the trigger, the robust mode's settings.

    Raises
    ------
    ConfigError
        If ``n_malicious`` leaves fewer than two honest banks, or the honest banks' test day has no attacks.
    """
    from mamori.features import FeatureStats, Standardizer
    from mamori.federation import (
        BackdoorTrigger,
        EstimatorTrainer,
        FederationConfig,
        backdoor_success_rate,
        make_malicious,
        recommended_robust_config,
        run_federation,
    )
    from mamori.models import AttackClassifier, calibrate_threshold, evaluate_scores

    config = config if config is not None else PoisoningConfig()
    if config.banks - config.n_malicious < 2:
        raise ConfigError(f"measure_poisoning: {config.n_malicious} malicious of {config.banks} banks leaves fewer "
                          "than two honest banks to judge on.")
    say = progress or (lambda _what: None)
    t0 = time.perf_counter()
    banks, names, n_events = _prepare(config)
    bad = set(range(1, 1 + config.n_malicious))
    honest = [i for i in range(len(banks)) if i not in bad]
    scaler = Standardizer().fit_stats(FeatureStats.merge([FeatureStats.from_matrix(b["X_train"]) for b in banks]))
    trigger = BackdoorTrigger.from_names(names, BACKDOOR_TRIGGER)
    X_test = np.vstack([banks[i]["X_test"] for i in honest])  # noqa: N806
    y_test = np.concatenate([banks[i]["y_test"] for i in honest])
    if not (y_test == 1).any():
        raise ConfigError("measure_poisoning: the honest banks' test day holds no attack; raise scale or days.")
    Z_test = scaler.transform(X_test).astype(np.float32)  # noqa: N806
    Z_calib = scaler.transform(np.vstack([banks[i]["X_calib"] for i in honest])).astype(np.float32)  # noqa: N806
    Z_trig = scaler.transform(trigger.apply(X_test[y_test == 1])).astype(np.float32)  # noqa: N806
    prep_seconds = time.perf_counter() - t0

    def model(seed: int) -> AttackClassifier:
        return AttackClassifier(hidden_layers=(32,), dropout=0.0, learning_rate=3e-3, batch_size=256,
                                seed=seed).init_weights(len(names))

    robust = recommended_robust_config("coordinator_sees_updates")
    modes = {"fedavg": None, "robust": robust}
    rows: list[dict[str, Any]] = []
    for mode, robust_config in modes.items():
        for attack in ("none", *config.attacks):
            say(f"poisoning: {mode}, {attack}")
            trainers: list[Any] = []
            for i, b in enumerate(banks):
                Z_tr = scaler.transform(b["X_train"]).astype(np.float32)  # noqa: N806
                member = EstimatorTrainer(model(config.seed + i), Z_tr, b["y_train"], Z_tr[:1], b["y_train"][:1])
                if attack != "none" and i in bad:
                    member = make_malicious(
                        attack, member, n_members=len(banks), n_malicious=len(bad), trigger=trigger,
                        transform=lambda X: scaler.transform(X).astype(np.float32),  # noqa: N803
                        raw_train=b["X_train"], seed=config.seed + i)
                trainers.append(member)
            fed_config = FederationConfig(num_rounds=config.rounds, local_epochs=1, fraction_evaluate=0.0,
                                          min_evaluate_nodes=0, evaluate_initial=False, seed=config.seed,
                                          robust=robust_config)
            checks: list[Any] = []
            started = time.perf_counter()
            result = run_federation(trainers, model(config.seed).get_weights(), fed_config,
                                    member_names=[b["name"] for b in banks], on_update_check=checks.append)
            final = model(config.seed).set_weights(result.arrays)
            scores = final.decision_function(Z_test)
            threshold = calibrate_threshold(final.decision_function(Z_calib), target_fpr=config.target_fpr)
            metrics = evaluate_scores(y_test, scores, threshold)
            bad_names = {banks[i]["name"] for i in bad} if attack != "none" else set()
            flagged = [m.member for r in checks for m in r.members if m.flagged]
            rows.append({
                "mode": mode,
                "attack": attack,
                "malicious": 0 if attack == "none" else len(bad),
                "pr_auc": float(metrics["pr_auc"]) if metrics["pr_auc"] is not None else float("nan"),
                "recall_at_fpr": float((scores[y_test == 1] > threshold).mean()),
                "backdoor_success": float(backdoor_success_rate(final.decision_function(Z_trig), threshold)),
                "malicious_flagged": len({m for m in flagged if m in bad_names}),
                "honest_flags": sum(1 for m in flagged if m not in bad_names),
                "seconds": time.perf_counter() - started,
            })
            logger.info("poisoning %s/%s: PR-AUC %.3f, backdoor %.3f", mode, attack, rows[-1]["pr_auc"],
                        rows[-1]["backdoor_success"])
    return {
        "rows": rows,
        "setup": {
            "banks": len(banks), "days": config.days, "scale": config.scale, "rounds": config.rounds,
            "events": n_events, "train_rows": int(sum(len(b["y_train"]) for b in banks)),
            "malicious_members": [banks[i]["name"] for i in sorted(bad)],
            "test_rows_judged": int(len(y_test)), "test_attack_rows": int((y_test == 1).sum()),
            "target_fpr": config.target_fpr, "seed": config.seed, "trigger": BACKDOOR_TRIGGER,
            "robust_mode": robust.model_dump() if robust is not None else None,
            "prepare_seconds": prep_seconds, "seconds": time.perf_counter() - t0,
        },
        "source": "measured by mamori assess (mamori.assess.measure_poisoning)",
    }
