"""Read a ``mamori demo --out DIR`` folder as assessment inputs: the federated model, its events and membership.

The demo writes ``results.json`` (its configuration and seed), ``models/<bank>.npz`` (the federated model as one
scoring bundle per bank, each with its own threshold) and ``mamori.db`` (every round's global model and the
audit log), but not its events. They are simulated again from the recorded configuration and seed (the simulator
is deterministic), and each bank's rows are split exactly as the demo split them (:func:`mamori.compare.split_member`),
so the assessment knows which rows the federated model trained on, which it never saw, and where the training
window ends.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mamori.errors import ConfigError

__all__ = ["IN_TRAINING", "DemoInputs", "load_demo"]

logger = logging.getLogger(__name__)

#: Column added to the events: 1 = the model trained on the row, 0 = held out from the training window (never
#: seen), null = neither (test period, or benign rows the demo's training sample left out).
IN_TRAINING = "labels.in_training"

JST = dt.timezone(dt.timedelta(hours=9))


@dataclass(frozen=True)
class DemoInputs:
    """What :func:`load_demo` found.

    Attributes
    ----------
    model : ScoringModel
        The federated model's bundle of the chosen member.
    events : polars.DataFrame
        Every member's labelled events, with the :data:`IN_TRAINING` column.
    db : str
        Store URL of the demo's ``mamori.db``.
    train_until : datetime.datetime
        End of the training window (UTC); the test window starts here.
    member_thresholds : dict of str to float
        Each member's own alert threshold (from its bundle).
    federation : dict
        The federation and privacy settings the demo trained with (rounds, strategy, secure aggregation, ...).
    demo : dict
        The demo's ``results.json`` ``meta`` part (configuration, seed, command).
    """

    model: Any
    events: pl.DataFrame
    db: str
    train_until: dt.datetime
    member_thresholds: dict[str, float]
    federation: dict[str, Any]
    demo: dict[str, Any]


def _check_against_results(events: pl.DataFrame, banks: list[dict[str, Any]]) -> None:
    """Fail when the re-simulated split does not reproduce the demo's own counts (e.g. another mamori version)."""
    counts = events.group_by("organization.id", IN_TRAINING).len()
    found = {(str(r[0]), r[1]): int(r[2]) for r in counts.iter_rows()}
    for bank in banks:
        name = bank["bank"]
        for flag, key in ((1, "train_events"), (0, "calibration_events")):
            if found.get((name, flag), 0) != int(bank[key]):
                raise ConfigError(
                    f"load_demo: re-simulating {name} gives {found.get((name, flag), 0)} {key.replace('_', ' ')}, "
                    f"the demo's results.json says {bank[key]}; the demo was run by another mamori version. "
                    "Re-run 'mamori demo' with this version, or pass --model and --data explicitly."
                )


def load_demo(directory: Path, *, member: str | None = None) -> DemoInputs:
    """Load a demo output folder: federated model, re-simulated events with training membership, store URL.

    Parameters
    ----------
    directory : pathlib.Path
        The folder ``mamori demo --out`` wrote.
    member : str or None, default=None
        Whose bundle (threshold) to assess the evasion attacks against; None takes the first bank by name.

    Returns
    -------
    DemoInputs

    Raises
    ------
    ConfigError
        If the folder lacks ``results.json``, ``models/*.npz`` or ``mamori.db``, or the member is unknown.
    """
    from mamori.compare import DemoConfig, split_member
    from mamori.detect import ScoringModel
    from mamori.features import FeatureConfig, labels_from_events
    from mamori.simulate import SimulationConfig, iter_bank_events

    results_path, models_dir, db_path = directory / "results.json", directory / "models", directory / "mamori.db"
    for path in (results_path, models_dir, db_path):
        if not path.exists():
            raise ConfigError(f"load_demo: {path} is missing; pass the folder written by 'mamori demo --out DIR'.")
    try:
        saved = json.loads(results_path.read_text())
        meta, meta_banks = saved["meta"], saved["data"]["banks"]
        config = DemoConfig.model_validate(meta["config"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"load_demo: {results_path} is not a demo's results.json ({exc}).") from exc
    bundles = {p.stem: ScoringModel.load(p) for p in sorted(models_dir.glob("*.npz"))}
    if not bundles:
        raise ConfigError(f"load_demo: {models_dir} holds no scoring bundles (*.npz).")
    chosen = member if member is not None else sorted(bundles)[0]
    if chosen not in bundles:
        raise ConfigError(f"load_demo: no bundle for member {chosen!r} in {models_dir}; have {sorted(bundles)}.")
    model = bundles[chosen]
    if model.feature_config != FeatureConfig():
        logger.warning("load_demo: the bundle's feature config differs from the demo default; using the bundle's.")

    # the same simulation and split as run_demo (mamori.compare.demo): same seed per bank, same test start
    sim = SimulationConfig(banks=config.banks, days=config.days, seed=config.seed, scale=config.scale,
                           waves=config.waves)
    start = dt.datetime.combine(sim.start, dt.time(), tzinfo=JST)
    test_start = (start + dt.timedelta(days=config.days - config.resolved_test_days())).astimezone(dt.UTC)
    test_start_np = np.datetime64(test_start.replace(tzinfo=None), "us")
    frames = []
    for i, (profile, events) in enumerate(iter_bank_events(sim)):
        y, families = labels_from_events(events)
        ts = events.get_column("@timestamp").dt.replace_time_zone(None).to_numpy()
        index = np.arange(events.height, dtype=np.float64).reshape(-1, 1)
        # split_member on row numbers instead of features returns which rows trained and which were held out
        split = split_member(profile.bank_id, index, y, families, ts, test_start_np,
                             calibration_share=config.calibration_share,
                             max_benign_train=config.comparison.max_benign_train, seed=config.seed + i)
        flag = np.full(events.height, -1, dtype=np.int8)
        flag[split.X_train[:, 0].astype(np.int64)] = 1
        flag[split.X_calib[:, 0].astype(np.int64)] = 0
        frames.append(events.with_columns(pl.Series(IN_TRAINING, flag)).with_columns(
            pl.when(pl.col(IN_TRAINING) >= 0).then(pl.col(IN_TRAINING)).otherwise(None).alias(IN_TRAINING)))
    events_all = pl.concat(frames, how="vertical_relaxed")
    _check_against_results(events_all, meta_banks)
    thresholds = {name: float(b.threshold) for name, b in bundles.items()}
    logger.info("load_demo: %d events from %d members, training window ends %s", events_all.height, len(frames),
                test_start.isoformat())
    federation = {**json.loads(config.comparison.model_dump_json()), "members": config.banks,
                  "aggregation": "FedAvg on the SecAgg+ masked sum" if config.comparison.secure_aggregation
                  else config.comparison.strategy, "trained_by": meta.get("command", "mamori demo")}
    return DemoInputs(model=model, events=events_all, db=f"sqlite:///{db_path.resolve()}", train_until=test_start,
                      member_thresholds=thresholds, federation=federation, demo=meta)
