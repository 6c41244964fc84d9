"""Train a :class:`ScoringModel` from labelled events or a simulated consortium (tests, benchmarks, demos)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

import numpy as np
import polars as pl

from mamori.detect.bundle import ScoringModel
from mamori.detect.indicators import CAMPAIGN_FEATURE, IndicatorIndex
from mamori.errors import ConfigError
from mamori.events import project_to_format
from mamori.features import FeatureConfig, Standardizer, extract_features, labels_from_events
from mamori.models import AttackClassifier, calibrate_threshold

__all__ = ["train_scoring_model", "train_simulated_model"]

logger = logging.getLogger(__name__)


def train_scoring_model(
    member_events: Iterable[pl.DataFrame],
    *,
    feature_config: FeatureConfig | None = None,
    hidden_layers: tuple[int, ...] = (64, 32),
    epochs: int = 5,
    target_fpr: float = 0.005,
    calibration_share: float = 0.2,
    max_benign_train: int = 200_000,
    name: str = "attack-classifier",
    seed: int = 0,
    indicators: IndicatorIndex | None = None,
) -> ScoringModel:
    """Train an attack classifier centrally on labelled events and bundle it for scoring.

    Parameters
    ----------
    member_events : iterable of polars.DataFrame
        Labelled canonical events, one frame per member (windowed features are computed per member).
    feature_config : FeatureConfig or None, default=None
        Feature settings; the default config when None.
    hidden_layers : tuple of int, default=(64, 32)
        Classifier widths.
    epochs : int, default=5
        Training epochs.
    target_fpr : float, default=0.005
        False-positive rate the threshold is calibrated to (on held-out benign rows).
    calibration_share : float, default=0.2
        Share of benign rows held out for the threshold.
    max_benign_train : int, default=200000
        Cap on benign training rows (seeded sample); attack rows are always kept.
    name : str, default="attack-classifier"
        Model name in the bundle.
    seed : int, default=0
        Seeds the splits and the training.
    indicators : IndicatorIndex or None, default=None
        Shared campaign indicators: when given, the model also reads :data:`~mamori.detect.CAMPAIGN_FEATURE`
        (:meth:`IndicatorIndex.campaign_hits`: 1 when the event's source IP or network was in a campaign indicator
        valid at the event's time) as its last feature, and a :class:`~mamori.detect.Scorer` computes that column
        from its own index. None: the plain feature spec.

    Returns
    -------
    ScoringModel

    Raises
    ------
    ConfigError
        If there are no attack rows or no benign rows to learn from.
    """
    config = feature_config or FeatureConfig()
    rng = np.random.default_rng(seed)
    xs, ys, fams = [], [], []
    spec = None
    for events in member_events:
        fm = extract_features(events, config)
        y, families = labels_from_events(events)
        spec = fm.spec
        X_member = fm.X
        if indicators is not None:
            X_member = np.hstack([X_member, indicators.campaign_hits(events)[:, None]])
        xs.append(X_member)
        ys.append(y)
        fams.append(families)
    if spec is None:
        raise ConfigError("train_scoring_model: no member events given.")
    if indicators is not None:
        # the same extension as mamori.analytics.add_campaign_feature, so both kinds of model read alike
        spec = dataclasses.replace(spec, names=(*spec.names, CAMPAIGN_FEATURE), groups=(*spec.groups, "campaign"),
                                   log1p=(*spec.log1p, False))
    X = np.concatenate(xs)
    y = np.concatenate(ys)
    families = np.concatenate(fams)
    benign = np.flatnonzero(y == 0)
    attack = np.flatnonzero(y == 1)
    if benign.size < 10 or attack.size < 1:
        raise ConfigError(
            f"train_scoring_model: need benign and attack rows; got {benign.size} benign and {attack.size} attack."
        )
    rng.shuffle(benign)
    n_cal = max(1, int(benign.size * calibration_share))
    calib = benign[:n_cal]
    fit_idx = np.sort(np.concatenate([benign[n_cal : n_cal + max_benign_train], attack]))
    standardizer = Standardizer().fit(X[fit_idx])
    Z = standardizer.transform(X[fit_idx])
    model = AttackClassifier(hidden_layers=hidden_layers, epochs=epochs, seed=seed).fit(Z, y[fit_idx])
    threshold = calibrate_threshold(model.decision_function(standardizer.transform(X[calib])), target_fpr)
    campaign: dict[str, int] = {}
    if indicators is not None:
        campaign = {"campaign_hit_rows": int(X[:, -1].sum())}
        if not campaign["campaign_hit_rows"]:
            logger.warning("train_scoring_model: no event matches a campaign indicator valid at its time; the "
                           "%s column is constant 0 and the model cannot learn from it", CAMPAIGN_FEATURE)
    names = sorted(set(families[attack].tolist()))
    Za = standardizer.transform(X[attack])
    centroids = np.stack([Za[families[attack] == f].mean(axis=0) for f in names]) if names else None
    logger.info(
        "train_scoring_model: %d rows (%d attack), %d features, threshold %.3f", fit_idx.size, attack.size,
        spec.n_features, threshold,
    )
    return ScoringModel.from_parts(
        model,
        standardizer,
        spec,
        threshold,
        name=name,
        families=names,
        centroids=centroids,
        metadata={"trained_rows": int(fit_idx.size), "attack_rows": int(attack.size), "target_fpr": target_fpr,
                  "seed": seed, **campaign},
    )


def train_simulated_model(
    banks: int = 2,
    days: int = 2,
    scale: float = 0.05,
    *,
    log_format: str | None = "nginx",
    seed: int = 1,
    **kwargs: object,
) -> ScoringModel:
    """Simulate a small consortium and train a scoring model on it (for tests, benchmarks and demos).

    Parameters
    ----------
    banks, days : int, default=2
        Simulated members and days.
    scale : float, default=0.05
        Population multiplier of the simulator.
    log_format : str or None, default="nginx"
        Train on what this gateway log format keeps of each event (``project_to_format``), so the model fits
        logs read with that format; None trains on the full canonical events.
    seed : int, default=1
        Simulation and training seed.
    **kwargs
        Passed to :func:`train_scoring_model`.

    Returns
    -------
    ScoringModel
    """
    from mamori.simulate import SimulationConfig, iter_bank_events

    sim = SimulationConfig(banks=banks, days=days, scale=scale, seed=seed)

    def frames() -> Iterable[pl.DataFrame]:
        for _profile, events in iter_bank_events(sim):
            if log_format is None:
                yield events
            else:
                labels = events.select([c for c in events.columns if c.startswith("labels.")])
                yield pl.concat([project_to_format(events, log_format).drop(labels.columns), labels],
                                how="horizontal")

    kwargs.setdefault("seed", seed)
    return train_scoring_model(frames(), **kwargs)  # type: ignore[arg-type]
