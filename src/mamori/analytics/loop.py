"""Closing the loop: shared campaign indicators as a feature column for the next window's detectors.

:func:`indicator_hits` marks events that match an indicator already published at the event's time,
:func:`add_campaign_feature` appends that mark to a feature matrix, and :func:`evaluate_closed_loop` trains the
detector of the next period with and without the column on the same rows, so the gain is measured, not assumed.
The live scorer gets the same column from pulled STIX indicators through
:meth:`mamori.detect.IndicatorIndex.campaign_hits` (see docs/cross-bank.md, *Closing the loop*).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl

from mamori.analytics.engine import Finding
from mamori.errors import ConfigError, SchemaError
from mamori.features import FeatureConfig, FeatureMatrix, Standardizer, extract_features, labels_from_events

__all__ = ["CAMPAIGN_FEATURE", "ClosedLoopReport", "DetectionFigures", "add_campaign_feature",
           "evaluate_closed_loop", "indicator_hits"]

logger = logging.getLogger(__name__)

#: Name of the feature column (and of the event column :func:`indicator_hits` adds).
CAMPAIGN_FEATURE = "campaign.indicator_hit"

_KIND_COLUMN = {"ip": "source.ip", "asn": "source.as.number", "user_agent": "user_agent.original",
                "ja3": "tls.client.ja3"}


def indicator_hits(events: pl.DataFrame, findings: Iterable[Finding], *, kinds: tuple[str, ...] = ("ip", "net24"),
                   valid_hours: float = 72.0) -> pl.DataFrame:
    """Mark events that match a campaign indicator already shared when the event happened.

    An event matches when one of its values of ``kinds`` equals a finding's value and the event time lies in
    ``[flagged_at, flagged_at + valid_hours)`` (an indicator only helps after it is published, so there is no
    look-ahead).

    Parameters
    ----------
    events : polars.DataFrame
        Canonical events.
    findings : iterable of Finding
        Shared findings (e.g. ``AnalyticsResult.findings.values()`` or parsed from pulled indicators).
    kinds : tuple of str, default=("ip", "net24")
        Which finding kinds to match.
    valid_hours : float, default=72.0
        Validity after the flag time.

    Returns
    -------
    polars.DataFrame
        ``events`` with an Int8 column :data:`CAMPAIGN_FEATURE` (1 on a hit).

    Raises
    ------
    SchemaError
        When ``@timestamp`` or ``source.ip`` is missing.
    """
    for col in ("@timestamp", "source.ip"):
        if col not in events.columns:
            raise SchemaError(f"indicator_hits: events lack column {col!r}; pass canonical events")
    hit = pl.lit(False)
    rows = [f for f in findings if f.kind in kinds]
    ts = pl.col("@timestamp").dt.epoch("us")
    for kind in kinds:
        sel = [f for f in rows if f.kind == kind]
        if not sel:
            continue
        table = pl.DataFrame({"value": [f.value for f in sel],
                              "from_us": [int(f.flagged_at.timestamp() * 1e6) for f in sel]}).group_by("value").agg(
            pl.col("from_us").min())
        if kind == "net24":
            col = pl.col("source.ip").str.replace(r"\.\d+$", "") + ".0/24"
        else:
            col = pl.col(_KIND_COLUMN[kind]).cast(pl.String)
        lookup = dict(zip(table["value"].to_list(), table["from_us"].to_list(), strict=True))
        since = col.replace_strict(lookup, default=None, return_dtype=pl.Int64)
        hit = hit | ((ts >= since) & (ts < since + int(valid_hours * 3.6e9))).fill_null(False)
    return events.with_columns(hit.cast(pl.Int8).alias(CAMPAIGN_FEATURE))


def add_campaign_feature(matrix: FeatureMatrix, events: pl.DataFrame, findings: Iterable[Finding], *,
                         valid_hours: float = 72.0) -> FeatureMatrix:
    """Append the campaign-indicator column to a feature matrix built from the same events (same row order).

    Parameters
    ----------
    matrix : FeatureMatrix
        From :func:`mamori.features.extract_features` on ``events``.
    events : polars.DataFrame
        The events the matrix was built from.
    findings : iterable of Finding
        Shared findings.
    valid_hours : float, default=72.0
        Validity after the flag time.

    Returns
    -------
    FeatureMatrix
        A new matrix with one more column, :data:`CAMPAIGN_FEATURE`, in group ``campaign``.

    Raises
    ------
    SchemaError
        When the matrix and the events differ in length.
    """
    if len(matrix) != events.height:
        raise SchemaError(f"add_campaign_feature: matrix has {len(matrix)} rows, events {events.height}")
    col = indicator_hits(events, findings, valid_hours=valid_hours)[CAMPAIGN_FEATURE].to_numpy().astype(np.float32)
    spec = matrix.spec
    new_spec = dataclasses.replace(spec, names=(*spec.names, CAMPAIGN_FEATURE), groups=(*spec.groups, "campaign"),
                                   log1p=(*spec.log1p, False))
    return FeatureMatrix(np.hstack([matrix.X, col[:, None]]), new_spec)




@dataclasses.dataclass
class DetectionFigures:
    """What one detector caught after the split.

    Attributes
    ----------
    threshold : float
        Alert threshold (calibrated on held-out benign rows before the split).
    recall : dict of str to float
        Attack family -> share of its events after the split scored above the threshold.
    benign_fpr : float
        Share of benign events after the split scored above the threshold.
    campaign_ips : float
        Share of the campaign family's source IPs (active after the split) with at least one alert.
    legit_ips : float
        Share of legitimate-only source IPs (active after the split) with at least one alert.
    campaign_hit_recall : float
        Share of the campaign family's events after the split that match a shared indicator and were alerted.
    """

    threshold: float
    recall: dict[str, float]
    benign_fpr: float
    campaign_ips: float
    legit_ips: float
    campaign_hit_recall: float


@dataclasses.dataclass
class ClosedLoopReport:
    """The next period's detector trained without and with the campaign-indicator feature, on the same rows.

    Attributes
    ----------
    split : datetime
        Training uses events before it, evaluation events from it on.
    train_rows, test_rows : int
        Rows before / after the split (all members).
    campaign_test_rows : int
        Events of the campaign family after the split.
    campaign_test_hits : int
        ... of which carry :data:`CAMPAIGN_FEATURE` = 1 (their source was already shared).
    without, with_feature : DetectionFigures
        The detector without the column, and with it.
    """

    split: dt.datetime
    train_rows: int
    test_rows: int
    campaign_test_rows: int
    campaign_test_hits: int
    without: DetectionFigures
    with_feature: DetectionFigures


def _figures(scores: np.ndarray, threshold: float, y: np.ndarray, fam: np.ndarray, ips: np.ndarray,
             hits: np.ndarray, campaign_family: str) -> DetectionFigures:
    alert = scores > threshold
    camp_hit = (fam == campaign_family) & (hits > 0)
    recall = {f: float(alert[fam == f].mean()) for f in sorted(set(fam[y == 1].tolist()))}
    benign = y == 0
    frame = pl.DataFrame({"ip": ips, "alert": alert, "camp": fam == campaign_family, "attack": y == 1})
    per_ip = frame.group_by("ip").agg(pl.col("alert").any(), pl.col("camp").any(), pl.col("attack").any())
    camp = per_ip.filter(pl.col("camp"))
    legit = per_ip.filter(~pl.col("attack"))
    return DetectionFigures(threshold=float(threshold), recall=recall,
                            benign_fpr=float(alert[benign].mean()) if benign.any() else 0.0,
                            campaign_ips=float(camp["alert"].mean()) if camp.height else 0.0,
                            legit_ips=float(legit["alert"].mean()) if legit.height else 0.0,
                            campaign_hit_recall=float(alert[camp_hit].mean()) if camp_hit.any() else 0.0)


def evaluate_closed_loop(
    bank_events: Mapping[str, pl.DataFrame],
    findings: Iterable[Finding],
    *,
    split: dt.datetime,
    campaign_family: str = "credential_stuffing_low_slow",
    feature_config: FeatureConfig | None = None,
    hidden_layers: tuple[int, ...] = (64, 32),
    epochs: int = 5,
    target_fpr: float = 0.005,
    calibration_share: float = 0.2,
    valid_hours: float = 72.0,
    unseen_families: tuple[str, ...] = (),
    seed: int = 0,
) -> ClosedLoopReport:
    """Train the next period's attack classifier with and without the campaign-indicator column; score both.

    Every member's events get the same features (:func:`mamori.features.extract_features`, causal) plus
    :data:`CAMPAIGN_FEATURE` from ``findings`` (only indicators already published at each event's time). Rows
    before ``split`` train an :class:`mamori.models.AttackClassifier` (threshold calibrated on held-out benign
    training rows at ``target_fpr``); rows from ``split`` on are scored. The two detectors differ only in that
    one column: same rows, seed and calibration.

    Parameters
    ----------
    bank_events : mapping of str to polars.DataFrame
        Member -> its labelled canonical events (``labels.is_attack``, ``labels.attack_family``).
    findings : iterable of Finding
        The shared campaign findings (e.g. ``run_analytics(...).findings.values()``).
    split : datetime
        Start of the evaluated period (timezone-aware).
    campaign_family : str, default="credential_stuffing_low_slow"
        The distributed campaign whose IP-level figure is reported.
    feature_config : FeatureConfig or None, default=None
        Feature settings; defaults when None.
    hidden_layers : tuple of int, default=(64, 32)
        Classifier widths.
    epochs : int, default=5
        Training epochs.
    target_fpr : float, default=0.005
        False-positive rate the thresholds are calibrated to.
    calibration_share : float, default=0.2
        Share of benign training rows held out for the threshold.
    valid_hours : float, default=72.0
        Validity of a shared indicator after its flag time.
    unseen_families : tuple of str, default=()
        Attack families left out of training (a new campaign the detector has no labelled example of): it can
        then only learn what a shared indicator means from the other families that hit one.
    seed : int, default=0
        Seeds the calibration split and the training.

    Returns
    -------
    ClosedLoopReport

    Raises
    ------
    ConfigError
        When either side of the split lacks benign or attack rows.
    """
    # Imported here: the sketches and the secure sum do not need PyTorch, only this evaluation does.
    from mamori.models import AttackClassifier, calibrate_threshold

    config = feature_config or FeatureConfig()
    shared = list(findings)
    split_us = int(split.timestamp() * 1e6)
    xs, ys, fams, ips, before = [], [], [], [], []
    for name in sorted(bank_events):
        events = bank_events[name]
        fm = add_campaign_feature(extract_features(events, config), events, shared, valid_hours=valid_hours)
        y, fam = labels_from_events(events)
        xs.append(fm.X)
        ys.append(y)
        fams.append(fam)
        ips.append(events["source.ip"].cast(pl.String).fill_null("").to_numpy())
        before.append(events["@timestamp"].dt.epoch("us").to_numpy() < split_us)
    X, y, fam = np.concatenate(xs), np.concatenate(ys), np.concatenate(fams)
    ip, train = np.concatenate(ips), np.concatenate(before)
    test = ~train
    for side, mask in (("before", train), ("from", test)):
        if not (y[mask] == 0).any() or not (y[mask] == 1).any():
            raise ConfigError(f"evaluate_closed_loop: the events {side} split={split.isoformat()} need benign and "
                              f"attack rows; got {int((y[mask] == 0).sum())} benign, {int((y[mask] == 1).sum())} "
                              "attack. Move the split.")
    rng = np.random.default_rng(seed)
    benign = np.flatnonzero(train & (y == 0))
    rng.shuffle(benign)
    n_cal = max(1, int(benign.size * calibration_share))
    calib = benign[:n_cal]
    taught = train & (y == 1) & ~np.isin(fam, list(unseen_families))
    fit = np.sort(np.concatenate([benign[n_cal:], np.flatnonzero(taught)]))
    out = []
    for cols in (slice(0, X.shape[1] - 1), slice(0, X.shape[1])):
        Xc = X[:, cols]
        standardizer = Standardizer().fit(Xc[fit])
        model = AttackClassifier(hidden_layers=hidden_layers, epochs=epochs, seed=seed).fit(
            standardizer.transform(Xc[fit]), y[fit])
        threshold = calibrate_threshold(model.decision_function(standardizer.transform(Xc[calib])), target_fpr)
        scores = np.asarray(model.decision_function(standardizer.transform(Xc[test])))
        out.append(_figures(scores, threshold, y[test], fam[test], ip[test], X[test, -1], campaign_family))
    camp_test = test & (fam == campaign_family)
    report = ClosedLoopReport(split=split, train_rows=int(train.sum()), test_rows=int(test.sum()),
                              campaign_test_rows=int(camp_test.sum()), campaign_test_hits=int(X[camp_test, -1].sum()),
                              without=out[0], with_feature=out[1])
    logger.info("closed loop: %s recall %.3f without, %.3f with the campaign feature", campaign_family,
                out[0].recall.get(campaign_family, 0.0), out[1].recall.get(campaign_family, 0.0))
    return report
