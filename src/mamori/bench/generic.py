r"""The generic adapter: bring any labelled dataset to ``mamori bench`` with a small TOML mapping, no code.

Two shapes of data are accepted.

A table (CSV, TSV or Parquet) with a label column::

    [bench]
    name = "my-flows"
    path = "flows.csv"            # relative to this TOML file
    # test_path = "flows-test.csv" # optional: an official test file; else a seeded split
    label = "label"
    positive = ["attack", "1"]     # label values meaning attack; or list `negative` values instead
    category = "attack_type"       # optional: the Dirichlet split runs over it (else over the label)
    features = ["bytes", "packets", "duration"]  # optional: default every numeric column but label/category
    categorical = ["proto"]        # optional: one-hot encoded (vocabulary from the training rows)
    text = ["url"]                 # optional: hashed character 3-grams (64 buckets per column)
    log1p = ["bytes", "packets"]   # optional: log1p-transformed before standardisation
    test_share = 0.3
    dedupe = true                  # drop exact duplicate rows (label, category and features) first

A log file in any format mamori reads (nginx, ALB, Envoy, ECS, OTel, CSIC, or CSV with its own mapping) plus
a labels file with one row per event, in order::

    [bench]
    name = "my-api-log"
    path = "access.log"
    log_format = "nginx"           # any mamori.events format; "csv" needs csv_mapping = "map.toml"
    labels = "labels.csv"          # CSV with a `label` column (and optional `category`), one row per event
    positive = ["1"]

Events become features through :func:`mamori.features.extract_features` (lexical, n-gram and, when the log has
timestamps, causal behaviour features).
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mamori.bench.dataset import BenchDataset
from mamori.errors import ConfigError, SchemaError
from mamori.features import FeatureConfig, extract_features, hash_ngrams

__all__ = ["GenericMapping", "load_generic"]

logger = logging.getLogger(__name__)


class GenericMapping(BaseModel):
    """The ``[bench]`` table of a generic dataset mapping (see the module docstring).

    Parameters
    ----------
    name : str
        Dataset name in reports.
    path : str
        Data file (table or log), relative to the TOML file.
    test_path : str or None, default=None
        An official test file of the same shape; None splits ``path`` with ``split_seed``.
    label : str, default="label"
        Label column (in the table, or in the labels file).
    positive : list of str, default=[]
        Label values (as text) meaning attack.
    negative : list of str, default=[]
        Label values meaning benign (used when ``positive`` is empty: everything else is an attack).
    category : str or None, default=None
        Category column for the Dirichlet split and per-category reporting.
    features, categorical, text, log1p : list of str
        Table columns: numeric features (default: every numeric column but label and category), one-hot
        columns, hashed-text columns, columns to ``log1p``.
    log_format : str or None, default=None
        A mamori log format: the data file is a log and ``labels`` must be given.
    csv_mapping : str or None, default=None
        The mamori CSV mapping for ``log_format = "csv"``.
    labels : str or None, default=None
        Labels file for a log (CSV with ``label`` and optional ``category`` columns, one row per event).
    test_labels : str or None, default=None
        Labels file of ``test_path`` for a log.
    test_share : float, default=0.3
        Held-out share when there is no ``test_path``.
    dedupe : bool, default=True
        Drop exact duplicate table rows before splitting (a duplicate on both sides would leak).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "generic"
    path: str
    test_path: str | None = None
    label: str = "label"
    positive: list[str] = []
    negative: list[str] = []
    category: str | None = None
    features: list[str] = []
    categorical: list[str] = []
    text: list[str] = []
    log1p: list[str] = []
    log_format: str | None = None
    csv_mapping: str | None = None
    labels: str | None = None
    test_labels: str | None = None
    test_share: float = Field(default=0.3, gt=0.0, lt=1.0)
    dedupe: bool = True

    @model_validator(mode="after")
    def _check(self) -> GenericMapping:
        if not self.positive and not self.negative:
            raise ValueError("give `positive` (label values meaning attack) or `negative` (values meaning benign)")
        if self.log_format is not None and self.labels is None:
            raise ValueError("a log (`log_format`) needs a `labels` file with one label per event")
        if self.log_format is not None and self.test_path is not None and self.test_labels is None:
            raise ValueError("`test_path` of a log needs `test_labels`")
        return self


def _load_mapping(path: Path) -> GenericMapping:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"bench mapping '{path}' does not exist.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bench mapping '{path.name}' is not valid TOML: {exc}.") from exc
    if "bench" not in data:
        raise ConfigError(f"bench mapping '{path.name}' has no [bench] table; see docs/benchmarks.md.")
    try:
        return GenericMapping.model_validate(data["bench"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'bench'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bench mapping '{path.name}' is invalid: {problems}.") from exc


def _read_table(path: Path, where: str) -> pl.DataFrame:
    if not path.exists():
        raise ConfigError(f"{where}: data file '{path}' does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        separator = "\t" if suffix in (".tsv", ".tab") else ","
        return pl.read_csv(path, separator=separator, infer_schema_length=10_000)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise SchemaError(f"{where}: cannot read '{path.name}' as a table: {exc}") from exc


def _labels(values: pl.Series, m: GenericMapping, where: str) -> np.ndarray:
    text = values.cast(pl.String).fill_null("").str.strip_chars()
    if m.positive:
        y = text.is_in(m.positive)
    else:
        y = ~text.is_in(m.negative)
    return y.to_numpy().astype(np.int64)


def _table_parts(frame: pl.DataFrame, m: GenericMapping, where: str) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    for col in [m.label, *([m.category] if m.category else []), *m.features, *m.categorical, *m.text, *m.log1p]:
        if col not in frame.columns:
            raise SchemaError(f"{where}: column {col!r} is not in the data (columns: {frame.columns[:20]}).")
    y = _labels(frame.get_column(m.label), m, where)
    if m.category:
        cat = frame.get_column(m.category).cast(pl.String).fill_null("none").to_numpy().astype(str)
        cat = np.where(y == 1, cat, "benign")
    else:
        cat = np.where(y == 1, "attack", "benign")
    return y, cat, frame


def _numeric_columns(frame: pl.DataFrame, m: GenericMapping) -> list[str]:
    if m.features:
        return list(m.features)
    skip = {m.label, m.category, *m.categorical, *m.text}
    return [c for c, t in frame.schema.items() if c not in skip and t.is_numeric()]


def _table_matrix(
    frame: pl.DataFrame, m: GenericMapping, numeric: list[str], vocab: dict[str, list[str]]
) -> tuple[np.ndarray, list[str]]:
    blocks: list[np.ndarray] = []
    names: list[str] = []
    if numeric:
        num = frame.select([pl.col(c).cast(pl.Float64, strict=False).fill_null(0.0) for c in numeric]).to_numpy()
        for j, c in enumerate(numeric):
            if c in m.log1p:
                num[:, j] = np.sign(num[:, j]) * np.log1p(np.abs(num[:, j]))
        blocks.append(num)
        names += numeric
    for c in m.categorical:
        values = frame.get_column(c).cast(pl.String).fill_null("").to_numpy()
        blocks.append((values[:, None] == np.asarray(vocab[c], dtype=object)[None, :]).astype(np.float64))
        names += [f"{c}={v}" for v in vocab[c]]
    for c in m.text:
        blocks.append(np.log1p(hash_ngrams(frame.get_column(c).cast(pl.String), 64, (3,))))
        names += [f"{c}_ngram_{i:02d}" for i in range(64)]
    if not blocks:
        raise SchemaError(f"generic dataset {m.name!r}: no feature columns (no numeric, categorical or text column).")
    X = np.concatenate(blocks, axis=1).astype(np.float32)
    return np.where(np.isfinite(X), X, 0.0).astype(np.float32), names


def _split(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        is_test[idx[: int(round(len(idx) * share))]] = True
    return is_test


def _load_table(m: GenericMapping, base: Path, split_seed: int) -> BenchDataset:
    where = f"generic dataset {m.name!r}"
    train = _read_table(base / m.path, where)
    notes: dict[str, Any] = {"source": m.path, "rows_read": train.height}
    test = _read_table(base / m.test_path, where) if m.test_path else None
    if m.dedupe:
        before = train.height
        train = train.unique(maintain_order=True)
        notes["removed_duplicates"] = before - train.height
    y_all, cat_all, train = _table_parts(train, m, where)
    if test is None:
        is_test = _split(y_all, m.test_share, split_seed)
        test_frame = train.filter(pl.Series(is_test))
        train_frame = train.filter(pl.Series(~is_test))
        y_te, cat_te, y_tr, cat_tr = y_all[is_test], cat_all[is_test], y_all[~is_test], cat_all[~is_test]
        notes["split"] = f"seeded stratified split, test_share={m.test_share}, seed={split_seed}"
    else:
        train_frame, y_tr, cat_tr = train, y_all, cat_all
        y_te, cat_te, test_frame = _table_parts(test, m, where)
        notes["split"] = f"official test file {m.test_path}"
    numeric = _numeric_columns(train_frame, m)
    vocab = {
        c: sorted(train_frame.get_column(c).cast(pl.String).fill_null("").unique().to_list()) for c in m.categorical
    }
    X_tr, names = _table_matrix(train_frame, m, numeric, vocab)
    X_te, _ = _table_matrix(test_frame, m, numeric, vocab)
    seen = set(cat_tr.tolist())
    return BenchDataset(
        name=m.name,
        X_train=X_tr,
        y_train=y_tr,
        category_train=cat_tr,
        X_test=X_te,
        y_test=y_te,
        category_test=cat_te,
        feature_names=tuple(names),
        unseen_categories=frozenset(c for c in set(cat_te.tolist()) if c not in seen and c != "benign"),
        notes=notes,
    )


def _load_log(m: GenericMapping, base: Path, split_seed: int) -> BenchDataset:
    from mamori.events import read_events

    where = f"generic dataset {m.name!r}"

    def read(path: str, labels: str) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        mapping = str(base / m.csv_mapping) if m.csv_mapping else None
        result = read_events(base / path, m.log_format or "auto", mapping=mapping)
        if result.summary.quarantined:
            raise SchemaError(
                f"{where}: {result.summary.quarantined} line(s) of '{path}' did not parse; labels would no longer "
                "line up with events. Fix or remove them first (mamori ingest shows which)."
            )
        lab = _read_table(base / labels, where)
        if lab.height != result.frame.height:
            raise SchemaError(
                f"{where}: '{labels}' has {lab.height} rows but '{path}' has {result.frame.height} events; "
                "the labels file needs one row per event, in order."
            )
        y, cat, _ = _table_parts(lab, m, where)
        return result.frame, y, cat

    events, y_all, cat_all = read(m.path, m.labels or "")
    has_time = "@timestamp" in events.columns and events.get_column("@timestamp").null_count() == 0
    if not has_time:
        events = events.with_columns(pl.datetime(2000, 1, 1, time_zone="UTC").alias("@timestamp"))
    config = FeatureConfig(include_behaviour=has_time)
    if m.test_path:
        test_events, y_te, cat_te = read(m.test_path, m.test_labels or "")
        if not has_time:
            test_events = test_events.with_columns(pl.datetime(2000, 1, 1, time_zone="UTC").alias("@timestamp"))
        train_matrix = extract_features(events, config)
        X_tr, X_te = train_matrix.X, extract_features(test_events, config).X
        y_tr, cat_tr = y_all, cat_all
        names = train_matrix.spec.names
        split = f"official test file {m.test_path}"
    else:
        matrix = extract_features(events, config)
        is_test = _split(y_all, m.test_share, split_seed)
        X_tr, X_te = matrix.X[~is_test], matrix.X[is_test]
        y_tr, y_te, cat_tr, cat_te = y_all[~is_test], y_all[is_test], cat_all[~is_test], cat_all[is_test]
        names = matrix.spec.names
        split = f"seeded stratified split, test_share={m.test_share}, seed={split_seed}"
    seen = set(cat_tr.tolist())
    return BenchDataset(
        name=m.name,
        X_train=X_tr,
        y_train=y_tr,
        category_train=cat_tr,
        X_test=X_te,
        y_test=y_te,
        category_test=cat_te,
        feature_names=tuple(names),
        unseen_categories=frozenset(c for c in set(cat_te.tolist()) if c not in seen and c != "benign"),
        notes={"source": m.path, "format": m.log_format, "events": int(len(y_all)), "split": split},
    )


def load_generic(mapping: Path, *, split_seed: int = 0) -> BenchDataset:
    """Load a dataset described by a generic TOML mapping (see the module docstring).

    Parameters
    ----------
    mapping : pathlib.Path
        The TOML file; data paths in it are relative to its folder.
    split_seed : int, default=0
        Seed of the train/test split when there is no ``test_path``.

    Returns
    -------
    BenchDataset
        Category: the ``category`` column for attacks (``benign`` for benign rows), or ``attack`` / ``benign``.

    Raises
    ------
    ConfigError
        If the mapping is missing or invalid.
    SchemaError
        If a file or column is missing, or labels do not line up with events.
    """
    mapping = Path(mapping)
    m = _load_mapping(mapping)
    base = mapping.resolve().parent
    if m.log_format is not None:
        return _load_log(m, base, split_seed)
    return _load_table(m, base, split_seed)
