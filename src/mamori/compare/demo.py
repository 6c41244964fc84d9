"""``mamori demo``: the main job on the embedded default — a simulated consortium, three regimes, a report."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mamori.compare.config import ComparisonConfig
from mamori.compare.data import MemberData
from mamori.compare.report import write_report
from mamori.compare.runner import run_comparison
from mamori.compare.summary import describe_members, summarise
from mamori.features import FeatureConfig, extract_features, labels_from_events
from mamori.federation import PrivacySpend, event_privacy_units
from mamori.simulate import SimulationConfig, iter_bank_events
from mamori.store import ModelRegistry, PrivacyLedger, open_store

__all__ = ["DemoConfig", "run_demo", "split_member"]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``; the CLI renders it.
ProgressCallback = Callable[[str, int, int], None]

JST = dt.timezone(dt.timedelta(hours=9))


class DemoConfig(BaseModel):
    """What ``mamori demo`` runs.

    Parameters
    ----------
    banks : int, default=5
        Members of the simulated consortium.
    days : int, default=7
        Days simulated; the last ``test_days`` are the test period.
    test_days : int or None, default=None
        Days held out for testing; None means ``max(1, round(days * 2 / 7))`` (2 of 7).
    seed : int, default=1
        Seed of the simulation, the splits and the training.
    scale : float, default=1.0
        Customer-population multiplier of the simulator (1.0: about 6 million requests a week).
    calibration_share : float, default=0.2
        Share of each bank's benign training-period events held out to calibrate its threshold.
    waves : int, default=2
        Times each campaign family runs per bank (``SimulationConfig.waves``); 2 puts every family a bank faces
        on both sides of the time split.
    comparison : ComparisonConfig
        Rounds, epochs, model size, target false-positive rate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    banks: int = Field(default=5, ge=2)
    days: int = Field(default=7, ge=2)
    test_days: int | None = Field(default=None, ge=1)
    seed: int = 1
    scale: float = Field(default=1.0, gt=0.0)
    calibration_share: float = Field(default=0.2, gt=0.0, lt=0.9)
    waves: int = Field(default=2, ge=1)
    comparison: ComparisonConfig = ComparisonConfig()

    @classmethod
    def quick(cls, seed: int = 1) -> DemoConfig:
        """A small consortium that runs the whole job in a couple of minutes (for CI)."""
        return cls(
            banks=5,
            days=4,
            test_days=2,
            seed=seed,
            scale=0.03,
            comparison=ComparisonConfig(rounds=5, local_epochs=1, max_benign_train=20_000, seed=seed),
        )

    def resolved_test_days(self) -> int:
        """Number of test days."""
        days = self.test_days if self.test_days is not None else max(1, round(self.days * 2 / 7))
        return min(days, self.days - 1)


def split_member(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    families: np.ndarray,
    timestamps: np.ndarray,
    test_start: np.datetime64,
    *,
    calibration_share: float,
    max_benign_train: int,
    seed: int,
    max_calibration: int = 100_000,
    units: np.ndarray | None = None,
) -> MemberData:
    """Split one member's rows in time (train before ``test_start``, test after) and hold out calibration rows.

    Benign training rows beyond ``max_benign_train`` are left out of training by a seeded sample; attack rows
    are always kept. ``calibration_share`` of the benign training-period rows never train the model and serve
    to calibrate the member's threshold (at most ``max_calibration`` of them: a 0.5% false-positive threshold
    is well determined by 100,000 benign rows). ``units`` (one privacy unit per row, for record-level DP) are
    split along with the rows.
    """
    rng = np.random.default_rng(seed)
    test = timestamps >= test_start
    train_idx = np.flatnonzero(~test)
    benign_idx = train_idx[y[train_idx] == 0]
    attack_idx = train_idx[y[train_idx] == 1]
    rng.shuffle(benign_idx)
    n_calib = int(len(benign_idx) * calibration_share)
    calib_idx = np.sort(benign_idx[: min(n_calib, max_calibration)])
    benign_train = benign_idx[n_calib : n_calib + max_benign_train]
    fit_idx = np.sort(np.concatenate([benign_train, attack_idx]))
    return MemberData(
        name=name,
        X_train=X[fit_idx],
        y_train=y[fit_idx],
        family_train=families[fit_idx],
        X_calib=X[calib_idx],
        X_test=X[test],
        y_test=y[test],
        family_test=families[test],
        units_train=None if units is None else np.asarray(units)[fit_idx],
    )


def _versions() -> dict[str, str]:
    out = {}
    for name in ("mamori", "flwr", "torch", "polars", "scikit-learn", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_demo(config: DemoConfig, out_dir: Path, *, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Simulate a consortium, train local-only, federated and centralized models, write the report.

    Parameters
    ----------
    config : DemoConfig
        Consortium size, days, seed, training settings.
    out_dir : pathlib.Path
        Receives ``results.json``, ``report.html`` and ``mamori.db`` (the model registry with every
        round's global model and the audit log).
    progress : callable or None, default=None
        ``progress(stage, done, total)``.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Two waves: every campaign family runs in both halves of the period at each bank it targets, so the test
    # days hold every family the bank faces; families a bank never faces are judged across banks (summary).
    sim_config = SimulationConfig(
        banks=config.banks, days=config.days, seed=config.seed, scale=config.scale, waves=config.waves
    )
    start = dt.datetime.combine(sim_config.start, dt.time(), tzinfo=JST)
    test_start = start + dt.timedelta(days=config.days - config.resolved_test_days())
    test_start_np = np.datetime64(test_start.astimezone(dt.UTC).replace(tzinfo=None), "us")

    # One bank at a time: simulate, extract features, split, and drop the events before the next bank, so
    # peak memory is one bank's events plus the kept matrices, not the whole consortium's events.
    members: list[MemberData] = []
    feature_spec = None
    total_events = 0
    record_dp = config.comparison.record_dp is not None
    for i, (profile, events) in enumerate(iter_bank_events(sim_config)):
        report("simulate", i + 1, config.banks)
        total_events += events.height
        matrix = extract_features(events, FeatureConfig())
        feature_spec = matrix.spec
        y, families = labels_from_events(events)
        timestamps = events.get_column("@timestamp").dt.replace_time_zone(None).to_numpy()
        # record-level DP: one privacy unit per customer; attack rows naming no identity are their own unit
        # (the rule in docs/privacy.md)
        units = event_privacy_units(events, attack=y == 1) if record_dp else None
        del events
        members.append(
            split_member(
                profile.bank_id,
                matrix.X,
                y,
                families,
                timestamps,
                test_start_np,
                calibration_share=config.calibration_share,
                max_benign_train=config.comparison.max_benign_train,
                seed=config.seed + i,
                units=units,
            )
        )
        del matrix
        report("features", i + 1, config.banks)

    store = open_store(f"sqlite:///{(out_dir / 'mamori.db').resolve()}")
    registry = ModelRegistry(store)

    ledger = PrivacyLedger(store)
    run_id = f"demo-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}-seed{config.seed}"

    def checkpoint(rnd: int, arrays: list[np.ndarray], digest: str) -> None:
        registry.register("demo-attack-classifier", rnd, arrays, {"federation_sha256": digest, "round": rnd})

    def record_spend(s: PrivacySpend) -> None:
        ledger.record(s.member, s.server_round, s.epsilon, s.delta, s.mechanism, run_id=run_id, unit=s.unit,
                      noise_multiplier=s.noise_multiplier, steps=s.steps)

    regimes = run_comparison(
        members, config.comparison, progress=report, on_checkpoint=checkpoint, on_privacy_spend=record_spend
    )
    if regimes["federated"]["record_dp"] is not None:
        regimes["federated"]["record_dp"]["ledger_run_id"] = run_id
    store.close()
    families: dict[str, int] = {}
    for m in members:
        for f in m.family_test[m.y_test == 1].tolist():
            families[f] = families.get(f, 0) + 1
    results: dict[str, Any] = {
        "meta": {
            "title": "federated detection on a simulated consortium",
            "description": (
                f"{config.banks} simulated banks, {config.days} days of retail-banking API traffic "
                f"({total_events:,} events); the last {config.resolved_test_days()} day(s) are the test period."
            ),
            "seed": config.seed,
            "config": json.loads(config.model_dump_json()),
            "versions": _versions(),
            "hardware": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
            "target_fpr": config.comparison.target_fpr,
            "events": total_events,
            "features": feature_spec.n_features if feature_spec is not None else 0,
            "command": " ".join(["mamori", *sys.argv[1:]]) if sys.argv and "mamori" in sys.argv[0] else "run_demo()",
            "method": (
                "Each bank's events become features (lexical and causal windowed behaviour; see docs/features.md). "
                "Training uses the days before the test period; a seeded share of each bank's benign training "
                "events is held out to calibrate that bank's own threshold to the target false-positive rate. "
                "The federated model is trained over Flower (FedAvg) with consortium-wide normalisation "
                "statistics merged from counts and sums; local-only models use the bank's own statistics; the "
                "centralized model pools every bank's training rows. PR-AUC is average precision of the logits."
            ),
        },
        "data": {"banks": describe_members(members), "test_start": test_start.isoformat()},
        "families": dict(sorted(families.items())),
        "summary": summarise(regimes, members),
    }
    regimes.pop("unseen_families", None)  # reported under summary
    artifacts = regimes.pop("_federated_artifacts")
    results["regimes"] = regimes
    results["models"] = _save_scoring_bundles(members, regimes, artifacts, feature_spec, out_dir)
    results["meta"]["seconds"] = time.perf_counter() - started
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=_json_default, allow_nan=True))
    write_report(results, out_dir / "report.html")
    return results


def _family_centroids(members: list[MemberData], standardizer: Any) -> tuple[list[str], np.ndarray]:
    """Mean standardised feature vector per attack family, from per-bank sums and counts (a secure-summable pair)."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for m in members:
        attacks = m.y_train == 1
        Z = standardizer.transform(m.X_train[attacks])
        for family in sorted(set(m.family_train[attacks].tolist())):
            rows = m.family_train[attacks] == family
            sums[family] = sums.get(family, 0) + Z[rows].sum(axis=0, dtype=np.float64)
            counts[family] = counts.get(family, 0) + int(rows.sum())
    families = sorted(sums)
    if not families:
        return [], np.zeros((0, 0))
    return families, np.stack([sums[f] / counts[f] for f in families])


def _save_scoring_bundles(
    members: list[MemberData], regimes: dict[str, Any], artifacts: dict[str, Any], spec: Any, out_dir: Path
) -> dict[str, str]:
    """Save the federated model as one scoring bundle per bank (its own threshold): ``models/<bank>.npz``.

    These are what a bank would deploy: ``mamori score --model``, ``mamori serve`` and ``mamori assess`` read them.
    """
    from mamori.detect import ScoringModel  # detect sits below compare; imported here to keep start-up light

    families, centroids = _family_centroids(members, artifacts["standardizer"])
    paths: dict[str, str] = {}
    (out_dir / "models").mkdir(exist_ok=True)
    for m in members:
        bundle = ScoringModel.from_parts(
            artifacts["model"],
            artifacts["standardizer"],
            spec,
            regimes["federated"]["banks"][m.name]["threshold"],
            name="demo-attack-classifier",
            version=len(regimes["federated"]["rounds"]) - 1,
            families=families,
            centroids=centroids if families else None,
            metadata={"bank": m.name, "federation_sha256": regimes["federated"]["final_hash"]},
        )
        paths[m.name] = str(bundle.save(out_dir / "models" / f"{m.name}.npz"))
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"cannot serialise {type(value).__name__}")


