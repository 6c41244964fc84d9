"""From canonical events to a float32 feature matrix, and ground truth for training."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from mamori.errors import SchemaError
from mamori.events.schema import LABEL_COLUMNS, conform
from mamori.features.behaviour import behaviour_columns, prepare_frame, request_columns
from mamori.features.config import FeatureConfig
from mamori.features.lexical import lexical_gather
from mamori.features.spec import FeatureMatrix, FeatureSpec

__all__ = ["extract_features", "labels_from_events"]

logger = logging.getLogger(__name__)

_DEFAULT_CONFIG = FeatureConfig()
_TRANSPOSE_ROWS = 2048


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


def extract_features(events: pl.DataFrame, config: FeatureConfig = _DEFAULT_CONFIG, *,
                     first_row: int = 0) -> FeatureMatrix:
    """Turn canonical events into a float32 matrix, one row per event, in input order.

    Parameters
    ----------
    events : polars.DataFrame
        Events with (a subset of) the columns of :data:`mamori.events.EVENT_SCHEMA`; missing columns are
        treated as null. ``@timestamp`` is required and must not be null. Every ``labels.*`` column is
        dropped before anything else happens, so features can never depend on ground truth.
    config : FeatureConfig, default=FeatureConfig()
        Windows, hash widths and the rest. All members of a consortium must use the same one.
    first_row : int, default=0
        Events before this position are history only: they shape the windowed features of the others but get
        no row of their own (a scorer prepends its retained history this way and pays for no rows it drops).

    Returns
    -------
    FeatureMatrix
        ``X`` of shape ``(len(events) - first_row, spec.n_features)``, dtype float32, row ``i`` for event
        ``first_row + i``; and the :class:`FeatureSpec` naming every column.

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
    if not 0 <= first_row <= frame.height:
        raise SchemaError(f"extract_features: first_row must be in [0, {frame.height}] for these events; got "
                          f"{first_row}.")
    n = frame.height - first_row

    names: list[str] = []
    groups: list[str] = []
    log1p: list[bool] = []

    # The lexical block (polars string kernels) runs in a second thread while the behaviour block (mostly
    # single-threaded NumPy) runs here: both release the GIL for their heavy parts, so a second core helps.
    # The request-context block reads one row at a time, so it is computed on the output rows only, in input
    # order (no sort, no scatter).
    own = frame.slice(first_row)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mamori-lexical")
    request_job = pool.submit(request_columns, own, config)
    lexical_job: Future[tuple[Any, list[str], list[str], list[bool]]] | None = None
    if config.include_lexical:
        lexical_job = pool.submit(lexical_gather, own.get_column("url.path"), own.get_column("url.query"),
                                  own.get_column("http.request.body.content"), config)
    try:
        if config.include_behaviour:
            order, columns, b_names, b_groups, b_log = behaviour_columns(prepare_frame(frame, config), config,
                                                                         request=False, first_row=first_row)
        else:
            order, columns, b_names, b_groups, b_log = np.arange(n, dtype=np.int64), [], [], [], []
    finally:
        pool.shutdown(wait=False)  # the jobs' results are awaited below
    ctx, ctx_names, ctx_groups, ctx_log = request_job.result()
    names += ctx_names
    groups += ctx_groups
    log1p += ctx_log
    keep = list(range(len(b_names)))
    names += b_names
    groups += b_groups
    log1p += b_log

    lex: Any = None
    if lexical_job is not None:
        lex, lex_names, lex_groups, lex_log = lexical_job.result()
        names += lex_names
        groups += lex_groups
        log1p += lex_log

    # Behaviour columns come in time order: put each into a feature-major buffer in input order (a plain copy
    # when the input was already in time order, the usual case for logs), then transpose into the row-major
    # result block by block, so both sides of the copy stay in cache.
    X = np.empty((n, len(names)), dtype=np.float32)
    n_ctx = ctx.shape[1]
    X[:, :n_ctx] = ctx
    del ctx
    if keep:
        # behaviour_columns already dropped the history rows (first_row)
        order = np.asarray(order, dtype=np.int64)
        dest = order - first_row if first_row else order
        in_order = bool(np.all(dest[1:] > dest[:-1])) if dest.size > 1 else True
        by_feature = np.empty((len(keep), n), dtype=np.float32)
        for j, i in enumerate(keep):
            col = columns[i]
            if in_order:
                by_feature[j] = col
            else:
                by_feature[j, dest] = col
        k = len(keep)
        for lo in range(0, n, _TRANSPOSE_ROWS):
            hi = min(lo + _TRANSPOSE_ROWS, n)
            X[lo:hi, n_ctx : n_ctx + k] = by_feature[:, lo:hi].T
        del by_feature
    del columns
    if lex is not None:
        lex.into(X[:, n_ctx + len(keep) :])
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
