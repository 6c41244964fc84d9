"""From canonical events to a float32 feature matrix, and ground truth for training."""

from __future__ import annotations

import logging
import time

import numpy as np
import polars as pl

from mamori.errors import SchemaError
from mamori.events.schema import LABEL_COLUMNS, conform
from mamori.features.behaviour import behaviour_columns, prepare_frame
from mamori.features.config import FeatureConfig
from mamori.features.lexical import lexical_block
from mamori.features.spec import FeatureMatrix, FeatureSpec

__all__ = ["extract_features", "labels_from_events"]

logger = logging.getLogger(__name__)

_DEFAULT_CONFIG = FeatureConfig()


def _canonical_without_labels(events: pl.DataFrame, source: str) -> pl.DataFrame:
    """Conform to the canonical schema and drop every ``labels.*`` column."""
    if not isinstance(events, pl.DataFrame):
        raise SchemaError(f"{source}: expected a polars DataFrame of canonical events, got {type(events).__name__}.")
    if "@timestamp" not in events.columns:
        raise SchemaError(f"{source}: column '@timestamp' is missing; every event needs a time.")
    visible = events.select([c for c in events.columns if not c.startswith("labels.")])
    frame = conform(visible, source=source).drop(list(LABEL_COLUMNS))
    nulls = frame.get_column("@timestamp").is_null()
    if nulls.any():
        first = int(nulls.arg_true()[0])
        raise SchemaError(
            f"{source}: column '@timestamp' is null in {int(nulls.sum())} rows (first at row {first}); "
            "drop or repair those events before extracting features."
        )
    return frame


def extract_features(events: pl.DataFrame, config: FeatureConfig = _DEFAULT_CONFIG) -> FeatureMatrix:
    """Turn canonical events into a float32 matrix, one row per event, in input order.

    Parameters
    ----------
    events : polars.DataFrame
        Events with (a subset of) the columns of :data:`mamori.events.EVENT_SCHEMA`; missing columns are
        treated as null. ``@timestamp`` is required and must not be null. Every ``labels.*`` column is
        dropped before anything else happens, so features can never depend on ground truth.
    config : FeatureConfig, default=FeatureConfig()
        Windows, hash widths and the rest. All members of a consortium must use the same one.

    Returns
    -------
    FeatureMatrix
        ``X`` of shape ``(len(events), spec.n_features)``, dtype float32, row ``i`` for event ``i``; and the
        :class:`FeatureSpec` naming every column.

    Raises
    ------
    SchemaError
        If ``events`` is not a DataFrame, a column cannot be cast to its canonical dtype, or a timestamp is
        null.

    Notes
    -----
    Windowed features are causal: the features of an event depend only on that event and on events with an
    earlier timestamp (or the same timestamp and an earlier row). Appending later events leaves earlier rows
    unchanged.
    """
    started = time.perf_counter()
    frame = _canonical_without_labels(events, "extract_features").with_row_index("__row")
    n = frame.height

    names: list[str] = []
    groups: list[str] = []
    log1p: list[bool] = []

    order, columns, b_names, b_groups, b_log = behaviour_columns(prepare_frame(frame, config), config)
    keep = [i for i, g in enumerate(b_groups) if config.include_behaviour or g == "request"]
    names += [b_names[i] for i in keep]
    groups += [b_groups[i] for i in keep]
    log1p += [b_log[i] for i in keep]

    lex: np.ndarray | None = None
    if config.include_lexical:
        lex, lex_names, lex_groups, lex_log = lexical_block(
            frame.get_column("url.path"),
            frame.get_column("url.query"),
            frame.get_column("http.request.body.content"),
            config,
        )
        names += lex_names
        groups += lex_groups
        log1p += lex_log

    # Behaviour columns come in time order: scatter each into a feature-major buffer in input order, then one
    # transposing copy into the row-major result.
    X = np.empty((n, len(names)), dtype=np.float32)
    if keep:
        by_feature = np.empty((len(keep), n), dtype=np.float32)
        for j, i in enumerate(keep):
            by_feature[j, order] = columns[i]
        X[:, : len(keep)] = by_feature.T
        del by_feature
    del columns
    if lex is not None:
        X[:, len(keep) :] = lex
    spec = FeatureSpec(tuple(names), tuple(groups), tuple(log1p), config.model_dump_json())
    logger.info("extract_features: %d events -> %d features in %.2f s", n, X.shape[1], time.perf_counter() - started)
    return FeatureMatrix(X, spec)


def labels_from_events(events: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return ground truth for training and evaluation only; never a feature.

    Parameters
    ----------
    events : polars.DataFrame
        Events with ``labels.is_attack`` and optionally ``labels.attack_family``.

    Returns
    -------
    y : numpy.ndarray
        Shape ``(n,)``, int64: 1 for an attack event, 0 otherwise (null counts as benign).
    families : numpy.ndarray
        Shape ``(n,)``, str: the attack family for attack events, ``"benign"`` for the rest.

    Raises
    ------
    SchemaError
        If ``labels.is_attack`` is missing.
    """
    if "labels.is_attack" not in events.columns:
        raise SchemaError(
            "labels_from_events: column 'labels.is_attack' is missing; only labelled (simulated or benchmark) "
            "events can be used for training or evaluation."
        )
    attack = events.get_column("labels.is_attack").cast(pl.Boolean).fill_null(False)
    y = attack.to_numpy().astype(np.int64)
    if "labels.attack_family" in events.columns:
        fam = events.select(
            pl.when(attack)
            .then(pl.col("labels.attack_family").cast(pl.String).fill_null("unknown"))
            .otherwise(pl.lit("benign"))
        ).to_series()
    else:
        fam = pl.Series(np.where(y == 1, "unknown", "benign"))
    return y, np.asarray(fam.to_list(), dtype=str)
