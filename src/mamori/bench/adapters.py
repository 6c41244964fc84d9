"""Adapters of the public benchmark datasets: NSL-KDD, HTTP DATASET CSIC 2010 and the SMS Spam Collection.

Each returns a :class:`~mamori.bench.dataset.BenchDataset`; the files are read in place from the data folder
(``--data-dir``, ``$MAMORI_DATA_DIR``, default ``../shared/data``) and never copied.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
import polars as pl

from mamori.bench.dataset import BenchDataset
from mamori.bench.params import param_profile, param_profile_names
from mamori.errors import ConfigError, SchemaError
from mamori.events import read_csic_files
from mamori.features import FeatureConfig, extract_features
from mamori.models.text import TextFeaturizer

__all__ = [
    "CSIC_FEATURES",
    "NSL_KDD_COLUMNS",
    "csic_events",
    "csic_features",
    "csic_request_key",
    "load_csic",
    "load_nsl_kdd",
    "load_sms",
]

logger = logging.getLogger(__name__)

#: The 41 KDD'99 feature names, in file order.
NSL_KDD_COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent",
    "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted", "num_root",
    "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login",
    "count", "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate", "same_srv_rate",
    "diff_srv_rate", "srv_diff_host_rate", "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate", "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)  # fmt: skip
_NSL_CATEGORICAL = ("protocol_type", "service", "flag")
_NSL_COUNTS = (
    "duration", "src_bytes", "dst_bytes", "wrong_fragment", "urgent", "hot", "num_failed_logins", "num_compromised",
    "num_root", "num_file_creations", "num_shells", "num_access_files", "count", "srv_count", "dst_host_count",
    "dst_host_srv_count",
)  # fmt: skip


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(
            f"{what}: {path} does not exist; pass --data-dir (or set MAMORI_DATA_DIR) to the folder holding the "
            "public datasets (see docs/benchmarks.md)."
        )
    return path


def _read_nsl(archive: zipfile.ZipFile, member: str) -> pl.DataFrame:
    names = [*NSL_KDD_COLUMNS, "attack", "difficulty"]
    try:
        raw = archive.read(member)
    except KeyError as exc:
        raise SchemaError(f"NSL-KDD: {member} is not in {archive.filename}.") from exc
    return pl.read_csv(io.BytesIO(raw), has_header=False, new_columns=names, infer_schema_length=0)


def _nsl_matrix(frame: pl.DataFrame, vocab: dict[str, list[str]]) -> tuple[np.ndarray, list[str]]:
    numeric = [c for c in NSL_KDD_COLUMNS if c not in _NSL_CATEGORICAL]
    num = frame.select([pl.col(c).cast(pl.Float64) for c in numeric]).to_numpy()
    for j, c in enumerate(numeric):
        if c in _NSL_COUNTS:
            num[:, j] = np.log1p(np.maximum(num[:, j], 0.0))
    blocks = [num]
    names = list(numeric)
    for c in _NSL_CATEGORICAL:
        values = frame.get_column(c).to_numpy()
        one_hot = (values[:, None] == np.asarray(vocab[c], dtype=object)[None, :]).astype(np.float64)
        blocks.append(one_hot)
        names += [f"{c}={v}" for v in vocab[c]]
    return np.concatenate(blocks, axis=1).astype(np.float32), names


def load_nsl_kdd(data_dir: Path, *, max_train: int | None = None, seed: int = 0) -> BenchDataset:
    """NSL-KDD with its official split: train on KDDTrain+, test on KDDTest+.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder holding ``NSL_KDD.zip``.
    max_train : int or None, default=None
        Keep a seeded random sample of this many training rows (for quick tests); None keeps all 125,973.
    seed : int, default=0
        Seed of that sample.

    Returns
    -------
    BenchDataset
        Features: the 38 numeric columns (counts and byte sizes ``log1p``-transformed) and one-hot
        ``protocol_type``, ``service``, ``flag`` (vocabulary from the training file; unknown test values are all
        zeros). Category: the attack name (``normal`` for benign). Attack names of KDDTest+ that KDDTrain+ never
        holds are the unseen categories.

    Raises
    ------
    ConfigError
        If the archive is missing.
    """
    path = _require(data_dir / "NSL_KDD.zip", "NSL-KDD")
    with zipfile.ZipFile(path) as archive:
        train = _read_nsl(archive, "KDDTrain+.txt")
        test = _read_nsl(archive, "KDDTest+.txt")
    if max_train is not None and max_train < train.height:
        train = train.sample(n=max_train, seed=seed, shuffle=False)
    vocab = {c: sorted(train.get_column(c).unique().to_list()) for c in _NSL_CATEGORICAL}
    X_train, names = _nsl_matrix(train, vocab)
    X_test, _ = _nsl_matrix(test, vocab)
    cat_train = train.get_column("attack").to_numpy().astype(str)
    cat_test = test.get_column("attack").to_numpy().astype(str)
    seen = set(cat_train.tolist())
    unseen = frozenset(c for c in set(cat_test.tolist()) if c not in seen and c != "normal")
    return BenchDataset(
        name="nsl-kdd",
        X_train=X_train,
        y_train=(cat_train != "normal").astype(np.int64),
        category_train=cat_train,
        X_test=X_test,
        y_test=(cat_test != "normal").astype(np.int64),
        category_test=cat_test,
        feature_names=tuple(names),
        unseen_categories=unseen,
        notes={"source": "NSL_KDD.zip: KDDTrain+.txt / KDDTest+.txt (official split)", "max_train": max_train},
    )


def csic_request_key(path: pl.Series, query: pl.Series, body: pl.Series) -> pl.Series:
    """The deduplication key of CSIC requests: decoded, lower-cased path plus parameters, whatever the method.

    Parameters
    ----------
    path, query, body : polars.Series
        ``url.path``, ``url.query`` and ``http.request.body.content``.

    Returns
    -------
    polars.Series
        ``path?params`` where ``params`` is the query string and the body joined by ``&`` (either may be
        empty), percent- and plus-decoded and lower-cased. A GET and a POST carrying the same parameters share
        a key: they are the same request for a detector that reads parameters.
    """
    out = []
    for p, q, b in zip(path.to_list(), query.to_list(), body.to_list(), strict=True):
        params = "&".join(x for x in (q, b) if x)
        out.append(unquote_plus(f"{p or ''}?{params}", errors="replace").lower().strip())
    return pl.Series("key", out, dtype=pl.String)


def csic_events(data_dir: Path, *, seed: int = 0, test_share: float = 0.3) -> tuple[pl.DataFrame, dict[str, Any]]:
    """CSIC 2010 requests, deduplicated and split: the procedure behind :func:`load_csic`.

    All three files are pooled (72,000 normal and 25,065 anomalous requests). Requests are grouped by
    :func:`csic_request_key`; a key carried by both normal and anomalous requests is dropped entirely (its label
    cannot be told from the path and parameters), and of every other key one request is kept (the first, files
    in name order). The distinct keys are then split at random (``seed``) into training and test, stratified by
    label, so no test request has an exact twin — same path and parameters, in the query or the body — among
    the training requests.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder holding ``csic_dataset.zip``.
    seed : int, default=0
        Seed of the split.
    test_share : float, default=0.3
        Share of distinct requests held out for testing.

    Returns
    -------
    events : polars.DataFrame
        The kept requests (canonical columns) plus ``_file`` (file stem), ``_index`` (request number within that
        file, from 0), ``_key``, ``_y`` (bool) and ``_test`` (bool).
    notes : dict
        Counts read and removed, and the split's description.
    """
    path = _require(data_dir / "csic_dataset.zip", "CSIC 2010")
    files = read_csic_files(path)
    frames = []
    for stem, (frame, _summary) in sorted(files.items()):
        frames.append(frame.with_row_index("_index").with_columns(pl.lit(stem).alias("_file")))
    events = pl.concat(frames, how="diagonal_relaxed")
    n_raw = events.height
    n_normal = int(sum(f.height for stem, (f, _s) in files.items() if "normal" in stem.lower()))
    events = events.with_columns(
        csic_request_key(
            events.get_column("url.path"),
            events.get_column("url.query"),
            events.get_column("http.request.body.content"),
        ).alias("_key"),
        pl.col("labels.is_attack").cast(pl.Boolean).fill_null(False).alias("_y"),
    )
    conflicting = events.group_by("_key").agg(pl.col("_y").n_unique().alias("n")).filter(pl.col("n") > 1)
    n_conflict_rows = events.join(conflicting.select("_key"), on="_key", how="semi").height
    events = events.join(conflicting.select("_key"), on="_key", how="anti", maintain_order="left")
    before_dedupe = events.height
    events = events.unique(subset=["_key"], keep="first", maintain_order=True)
    rng = np.random.default_rng(seed)
    y = events.get_column("_y").to_numpy().astype(np.int64)
    is_test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        is_test[idx[: int(round(len(idx) * test_share))]] = True
    events = events.with_columns(pl.Series("_test", is_test))
    notes = {
        "source": "csic_dataset.zip: all three files pooled",
        "requests_read": n_raw,
        "normal_read": n_normal,
        "removed_label_conflicts": int(n_conflict_rows),
        "removed_duplicates": int(before_dedupe - events.height),
        "distinct_requests": int(events.height),
        "distinct_normal": int((y == 0).sum()),
        "distinct_anomalous": int((y == 1).sum()),
        "test_requests": int(is_test.sum()),
        "split": f"distinct requests, stratified by label, test_share={test_share}, seed={seed}",
        "dedupe_key": "lower(unquote_plus(path + '?' + query & body)) across methods",
    }
    logger.info(
        "CSIC: %d requests read; %d removed (label conflicts), %d removed (duplicates); %d distinct",
        n_raw,
        n_conflict_rows,
        before_dedupe - events.height,
        events.height,
    )
    return events, notes


#: Feature settings of the CSIC benchmark: the lexical block with wider n-gram blocks, no behaviour features.
CSIC_FEATURES = FeatureConfig(include_behaviour=False, path_hash_buckets=64, payload_hash_buckets=256, ngram_sizes=(3,))


def csic_features(events: pl.DataFrame, config: FeatureConfig = CSIC_FEATURES) -> np.ndarray:
    """Feature matrix of CSIC requests: the lexical block plus the per-parameter profile.

    Parameters
    ----------
    events : polars.DataFrame
        Requests from :func:`csic_events` or the CSIC reader; columns starting with ``_`` are ignored.
    config : FeatureConfig, default=CSIC_FEATURES
        Settings of the lexical block.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, d)``, float32: :func:`mamori.features.extract_features` (CSIC carries no timestamps: a
        constant one is filled in) followed by :func:`mamori.bench.params.param_profile` of the query string
        and body.
    """
    return _csic_matrix(events, config)[0]


def _csic_matrix(events: pl.DataFrame, config: FeatureConfig) -> tuple[np.ndarray, tuple[str, ...]]:
    stamped = events.select([c for c in events.columns if not c.startswith("_")]).with_columns(
        pl.datetime(2010, 1, 1, time_zone="UTC").alias("@timestamp")
    )
    matrix = extract_features(stamped, config)
    params = param_profile(
        events.get_column("url.query").cast(pl.String).to_list(),
        events.get_column("http.request.body.content").cast(pl.String).to_list(),
    )
    X = np.concatenate([matrix.X, params], axis=1).astype(np.float32, copy=False)
    return X, (*matrix.spec.names, *param_profile_names())


def load_csic(
    data_dir: Path, *, seed: int = 0, test_share: float = 0.3, feature_config: FeatureConfig | None = None
) -> BenchDataset:
    """CSIC 2010 with a deduplicated, seeded supervised split that never tests on a training request's twin.

    See :func:`csic_events` for the deduplication and the split.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder holding ``csic_dataset.zip``.
    seed : int, default=0
        Seed of the split.
    test_share : float, default=0.3
        Share of distinct requests held out for testing.
    feature_config : FeatureConfig or None, default=None
        Settings of the lexical block; None uses :data:`CSIC_FEATURES` (64 path and 256 payload n-gram buckets,
        no behaviour features: CSIC has no timestamps, clients or sessions worth counting). The per-parameter
        profile (:func:`mamori.bench.params.param_profile`, 64 name buckets) follows it.

    Returns
    -------
    BenchDataset
        Category: ``normal`` or ``anomalous`` (CSIC does not label attack types). ``notes`` holds the counts
        removed by deduplication.
    """
    events, notes = csic_events(data_dir, seed=seed, test_share=test_share)
    X, names = _csic_matrix(events, feature_config or CSIC_FEATURES)
    y = events.get_column("_y").to_numpy().astype(np.int64)
    is_test = events.get_column("_test").to_numpy()
    category = np.where(y == 1, "anomalous", "normal")
    return BenchDataset(
        name="csic",
        X_train=X[~is_test],
        y_train=y[~is_test],
        category_train=category[~is_test],
        X_test=X[is_test],
        y_test=y[is_test],
        category_test=category[is_test],
        feature_names=names,
        notes=notes,
    )


def load_sms(data_dir: Path, *, seed: int = 0, test_share: float = 0.3) -> BenchDataset:
    """SMS Spam Collection v.1: exact duplicate messages removed, then a seeded stratified split.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder holding ``sms_spam_collection/SMSSpamCollection``.
    seed : int, default=0
        Seed of the split.
    test_share : float, default=0.3
        Share of distinct messages held out for testing.

    Returns
    -------
    BenchDataset
        Features from :class:`~mamori.models.text.TextFeaturizer` (hashed word and character n-grams and a few
        message/URL statistics); category ``ham`` or ``spam``; ``standardise=False`` (rows are already
        L2-normalised).
    """
    path = _require(data_dir / "sms_spam_collection" / "SMSSpamCollection", "SMS Spam Collection")
    labels, texts = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        if not line.strip():
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in ("ham", "spam"):
            raise SchemaError(f"SMS Spam Collection: line {i + 1} of {path} is not 'ham|spam<TAB>text'.")
        labels.append(label)
        texts.append(text)
    frame = pl.DataFrame({"label": labels, "text": texts})
    n_raw = frame.height
    frame = frame.unique(subset=["text"], keep="first", maintain_order=True)
    y = (frame.get_column("label") == "spam").to_numpy().astype(np.int64)
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        is_test[idx[: int(round(len(idx) * test_share))]] = True
    featurizer = TextFeaturizer()
    X = featurizer.transform(frame.get_column("text").to_list())
    category = frame.get_column("label").to_numpy().astype(str)
    return BenchDataset(
        name="sms",
        X_train=X[~is_test],
        y_train=y[~is_test],
        category_train=category[~is_test],
        X_test=X[is_test],
        y_test=y[is_test],
        category_test=category[is_test],
        feature_names=featurizer.feature_names(),
        standardise=False,
        notes={
            "source": "sms_spam_collection/SMSSpamCollection",
            "messages_read": n_raw,
            "removed_duplicates": int(n_raw - frame.height),
            "split": f"distinct messages, stratified by label, test_share={test_share}, seed={seed}",
        },
    )
