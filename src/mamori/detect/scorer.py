"""Score canonical events with a :class:`ScoringModel`, carrying per-entity window state, and raise alerts."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.alerts import Alert, AlertDeduplicator, AlertSink, alert_id, guess_families
from mamori.detect.bundle import ScoringModel
from mamori.detect.config import ScoringConfig
from mamori.detect.indicators import CAMPAIGN_FEATURE, IndicatorIndex
from mamori.detect.state import WindowState, canonical_batch
from mamori.errors import SchemaError
from mamori.features import FeatureSpec, OnlineFeatures, extract_features
from mamori.models import explain

__all__ = ["ScoredBatch", "Scorer"]

logger = logging.getLogger(__name__)

_ENTITY_FIELDS = ("source.ip", "user.name", "user.id", "session.id")
_REQUEST_FIELDS = ("http.request.method", "url.path", "http.response.status_code", "event.action", "event.outcome")
#: Rows standardised per step of a batch matrix: about 1 MB of float32 features, cache-resident.
_STANDARDIZE_ROWS = 1024


@dataclass
class ScoredBatch:
    """The result of scoring a batch.

    Attributes
    ----------
    scores : numpy.ndarray
        Shape ``(n,)``, float32: one score per input event, in input order.
    threshold : float
        The model's threshold; ``scores > threshold`` are hits.
    alerts : list of Alert
        New alerts raised by this batch (after deduplication).
    hits : int
        Events over the threshold (before deduplication).
    model_version : int
        Version of the model that scored the batch.
    model_sha256 : str
        Its hash.
    seconds : float
        Wall time spent.
    alert_rows : list of int
        Input row of each alert's triggering event.
    """

    scores: np.ndarray
    threshold: float
    alerts: list[Alert] = field(default_factory=list)
    hits: int = 0
    model_version: int = 0
    model_sha256: str = ""
    seconds: float = 0.0
    alert_rows: list[int] = field(default_factory=list)


def _linear_layers(bundle: ScoringModel) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The attack classifier's (Linear, ReLU[, Dropout])* Linear stack as pre-transposed float32 NumPy weights.

    Scoring then costs a few matrix products (BLAS on every core) and no per-call torch dispatch; dropout is the
    identity in eval mode. None for other model kinds (they keep the torch forward pass).
    """
    if bundle.kind != "attack-classifier" or len(bundle.weights) % 2:
        return None
    layers = []
    for W, b in zip(bundle.weights[0::2], bundle.weights[1::2], strict=True):
        W = np.asarray(W, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if W.ndim != 2 or b.shape != (W.shape[0],):
            return None
        layers.append((np.ascontiguousarray(W.T), b))
    if layers[0][0].shape[0] != bundle.spec.n_features or layers[-1][0].shape[1] != 1:
        return None
    return layers


def _integrated_gradients(layers: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray, steps: int) -> np.ndarray:
    """Integrated gradients of the logit from the zero baseline, by a NumPy forward and backward pass.

    The same quantity as :func:`mamori.models.explain` computes with torch autograd (midpoint rule over
    ``steps`` points, ReLU gradient 0 at 0), for every row and step in one batch of matrix products: well under
    a millisecond for an alert instead of tens of milliseconds of torch dispatch on the request path.
    Shape ``(n, d)`` in, ``(n, d)`` float64 out.
    """
    n, d = X.shape
    x = np.asarray(X, dtype=np.float32)
    alphas = (np.arange(steps, dtype=np.float32) + np.float32(0.5)) / np.float32(steps)
    h = (alphas[:, None, None] * x[None, :, :]).reshape(steps * n, d)
    masks = []
    for W, b in layers[:-1]:
        h = h @ W
        h += b
        mask = h > 0
        masks.append(mask)
        h *= mask
    w_out = layers[-1][0][:, 0]
    g = np.broadcast_to(w_out, (steps * n, w_out.size))
    for (W, _b), mask in zip(reversed(layers[:-1]), reversed(masks), strict=True):
        g = (g * mask) @ W.T
    total = g.reshape(steps, n, d).sum(axis=0, dtype=np.float32)
    return (x * total / np.float32(steps)).astype(np.float64)


@dataclass
class _Prepared:
    """A batch whose features are extracted (and which joined the window state), waiting to be scored."""

    loaded: _Loaded
    batch: pl.DataFrame
    X: np.ndarray | None
    n_ctx: int


class _HitFrame:
    """The events over the threshold of a batch, as a DataFrame: fields for deduplication, rows on demand."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def entities(self, dedup_by: Sequence[str]) -> list[tuple[str, Any]]:
        """Per hit, the first non-null ``(field, value)`` of ``dedup_by``, else ``("event", None)``."""
        columns = [(c, self.frame.get_column(c).to_list()) for c in dedup_by if c in self.frame.columns]
        if len(columns) == 1:  # the usual case (source.ip): no generator per hit
            c, values = columns[0]
            return [("event", None) if v is None else (c, v) for v in values]
        out: list[tuple[str, Any]] = []
        for i in range(self.frame.height):
            out.append(next(((c, values[i]) for c, values in columns if values[i] is not None), ("event", None)))
        return out

    def stamps(self) -> list[dt.datetime]:
        """Per hit, its ``@timestamp``."""
        return self.frame.get_column("@timestamp").to_list()

    def rows(self, positions: list[int]) -> list[dict[str, Any]]:
        """The hits at ``positions`` as dicts."""
        return self.frame[positions].to_dicts()


class _HitRows:
    """The events over the threshold as dicts (the HTTP API's rows): the same reads as :class:`_HitFrame`."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.hits = rows

    def entities(self, dedup_by: Sequence[str]) -> list[tuple[str, Any]]:
        """Per hit, the first non-null ``(field, value)`` of ``dedup_by``, else ``("event", None)``."""
        return [next(((c, row.get(c)) for c in dedup_by if row.get(c) is not None), ("event", None))
                for row in self.hits]

    def stamps(self) -> list[dt.datetime]:
        """Per hit, its ``@timestamp``."""
        return [row["@timestamp"] for row in self.hits]

    def rows(self, positions: list[int]) -> list[dict[str, Any]]:
        """The hits at ``positions``."""
        return [self.hits[p] for p in positions]


def _top_features(contrib: np.ndarray, Z: np.ndarray, spec: FeatureSpec, top_k: int) -> list[list[dict[str, Any]]]:
    """Per row, up to ``top_k`` features with a positive contribution, largest first (as ``explain`` orders them)."""
    out = []
    orders = np.argsort(-contrib, axis=1, kind="stable")[:, :top_k]  # one call: the same per-row stable orders
    for i in range(contrib.shape[0]):
        order = orders[i]
        out.append([{"name": spec.names[j], "group": spec.groups[j], "value": round(float(Z[i, j]), 4),
                     "contribution": round(float(contrib[i, j]), 4)} for j in order if contrib[i, j] > 0])
    return out


def _uses_campaign(spec: FeatureSpec) -> bool:
    """Whether a model reads the shared campaign-indicator column (always its last feature)."""
    return spec.names[-1:] == (CAMPAIGN_FEATURE,)


def _extracted_spec(spec: FeatureSpec) -> FeatureSpec:
    """The columns the feature extractors make for a model: its spec without the campaign column."""
    if not _uses_campaign(spec):
        return spec
    return FeatureSpec(spec.names[:-1], spec.groups[:-1], spec.log1p[:-1], spec.config_json)


class _Loaded:
    """A model ready to score: bundle, detector, standardiser, hash (swapped atomically on reload)."""

    def __init__(self, bundle: ScoringModel) -> None:
        self.bundle = bundle
        self.detector = bundle.detector()
        self.standardizer = bundle.standardizer()
        self.sha256 = bundle.metadata.get("registry_sha256") or bundle.sha256
        self.feature_config = bundle.feature_config
        self.mean32 = np.asarray(self.standardizer.mean_, dtype=np.float32)
        self.inv_scale32 = (1.0 / np.asarray(self.standardizer.scale_, dtype=np.float64)).astype(np.float32)
        self.clip = bundle.clip
        self.layers = _linear_layers(bundle)
        self.campaign = _uses_campaign(bundle.spec)
        self.extracted_names = _extracted_spec(bundle.spec).names

    def decision_function(self, Z: np.ndarray) -> np.ndarray:
        """Scores of standardised rows: the classifier's logit as a NumPy forward pass, else the detector's."""
        if self.layers is None:
            return np.asarray(self.detector.decision_function(Z), dtype=np.float64)
        h = Z
        last = len(self.layers) - 1
        for i, (W, b) in enumerate(self.layers):
            h = h @ W
            h += b
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h.reshape(-1).astype(np.float64)

    def standardize(self, X: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """The standardiser's transform in float32 (same values up to float32 rounding).

        ``inplace=True`` overwrites ``X`` (float32, C-contiguous) instead of allocating a second matrix: a batch
        chunk's matrix is hundreds of MB, and fresh pages cost page faults.
        """
        if inplace and X.dtype == np.float32 and X.ndim == 2:
            # a chunk's matrix is hundreds of MB: all four steps on a block of rows that stays in cache, instead
            # of four passes over main memory (the same elementwise operations, so the same values)
            for lo in range(0, X.shape[0], _STANDARDIZE_ROWS):
                self._standardize_block(X[lo : lo + _STANDARDIZE_ROWS])
            return X
        Z = np.subtract(X, self.mean32, dtype=np.float32)
        self._standardize_block(Z, subtract=False)
        return Z

    def _standardize_block(self, Z: np.ndarray, *, subtract: bool = True) -> None:
        """Standardise float32 rows in place: centre (unless done), scale, non-finite -> 0, clip."""
        if subtract:
            Z -= self.mean32
        Z *= self.inv_scale32
        # usually all finite: one reduction (no mask) proves it; NaN and inf propagate into the sum, and a
        # float32 overflow of the sum only sends us to the exact pass (which then changes nothing)
        if not np.isfinite(np.add.reduce(Z, axis=None, dtype=np.float32)):
            bad = ~np.isfinite(Z)
            Z[bad] = 0.0
        if self.clip is not None:
            np.clip(Z, -self.clip, self.clip, out=Z)


class Scorer:
    """Scores event batches in arrival order, keeping the window state that windowed features need.

    Parameters
    ----------
    model : ScoringModel
        The model bundle.
    config : ScoringConfig or None, default=None
        State budget, deduplication and explanation settings.
    indicators : IndicatorIndex or None, default=None
        Shared indicators to attach to alerts. For a model whose feature spec ends with
        :data:`~mamori.detect.CAMPAIGN_FEATURE` they also give that column
        (:meth:`IndicatorIndex.campaign_hits`); without them the column is 0 (logged once).
    sinks : sequence of AlertSink, default=()
        Every new alert is emitted to each.

    Notes
    -----
    Calls are serialised by a lock: state is updated batch after batch, in call order. Swap the model with
    :meth:`set_model` at any time; a batch is scored entirely by the model current when it started.
    """

    def __init__(self, model: ScoringModel, config: ScoringConfig | None = None,
                 indicators: IndicatorIndex | None = None, sinks: Sequence[AlertSink] = ()) -> None:
        self.config = config or ScoringConfig()
        self.indicators = indicators
        self.sinks = list(sinks)
        self._loaded = _Loaded(model)
        fc = self._loaded.feature_config
        self.state = WindowState(self.config.horizon_seconds, self.config.max_state_events,
                                 population_seconds=fc.window_seconds(fc.long_window))
        self.dedup = AlertDeduplicator(self.config.dedup_seconds, self.config.max_dedup_entities)
        self.online: OnlineFeatures | None = self._online(model) if self.config.incremental else None
        self._lock = threading.Lock()
        self.events_scored = 0
        self.hits = 0
        self.alerts_raised = 0
        self._warned_no_index = False

    def _online(self, model: ScoringModel) -> OnlineFeatures:
        return OnlineFeatures(_extracted_spec(model.spec), horizon_seconds=self.config.horizon_seconds,
                              max_entities=self.config.max_entities,
                              max_window_events=max(self.config.max_state_events, 1))

    @property
    def incremental(self) -> bool:
        """Whether features come from per-entity aggregates (``ScoringConfig.incremental``)."""
        return self.online is not None

    # ---- model --------------------------------------------------------------------------------------------
    @property
    def model(self) -> ScoringModel:
        """The current model bundle."""
        return self._loaded.bundle

    @property
    def model_sha256(self) -> str:
        """Hash of the current model (registry hash when loaded from the registry)."""
        return str(self._loaded.sha256)

    def set_model(self, model: ScoringModel) -> None:
        """Swap in a new model (hot reload); the window state is kept when the feature spec is unchanged.

        Parameters
        ----------
        model : ScoringModel
            The new bundle.
        """
        loaded = _Loaded(model)  # built outside the lock: scoring continues meanwhile
        # the campaign column is not window state: adding or dropping it keeps the aggregates
        same_spec = (_extracted_spec(model.spec).names, model.spec.config_json) == (
            self._loaded.extracted_names, self._loaded.bundle.spec.config_json)
        online = self._online(model) if self.online is not None and not same_spec else None
        with self._lock:
            if not same_spec:
                if online is not None:
                    logger.warning("new model has another feature spec; incremental aggregates start afresh")
                    self.online = online
                else:
                    logger.warning("new model has another feature spec; window state kept (events are the same)")
            self._loaded = loaded
        logger.info("scoring with model %s v%d (%s)", model.name, model.version, loaded.sha256[:12])

    # ---- scoring ------------------------------------------------------------------------------------------
    def score(self, events: pl.DataFrame, *, related_context: bool = False, explain_alerts: bool = True
              ) -> ScoredBatch:
        """Score a batch of canonical events, update the window state, raise and emit alerts.

        Parameters
        ----------
        events : polars.DataFrame
            Canonical events (any subset of the schema; ``@timestamp`` required and non-null), in arrival order.
            ``labels.*`` columns are ignored.
        related_context : bool, default=False
            Prepend only the state rows related to the batch's entities (faster for small batches; same
            features).
        explain_alerts : bool, default=True
            Attach the top contributing features to each new alert.

        Returns
        -------
        ScoredBatch

        Raises
        ------
        SchemaError
            If the events do not fit the canonical schema or a timestamp is missing.
        """
        started = time.perf_counter()
        batch = self._checked_batch(events)
        if self.online is not None:
            return self._score_rows(batch.to_dicts(), explain_alerts, started)
        with self._lock:
            prepared = self._featurise(batch, related_context)
            result = self._finish(prepared, explain_alerts, started)
        self._emit(result)
        return result

    def score_batches(self, batches: Iterable[pl.DataFrame], *, explain_alerts: bool = True
                      ) -> Iterator[ScoredBatch]:
        """Score batches in order, as :meth:`score` does one by one, with two stages in flight.

        The features of batch *n + 1* need the window state after batch *n*, not its scores: so while a worker
        thread standardises, scores and deduplicates batch *n*, the caller's thread already extracts the
        features of batch *n + 1* (NumPy, polars and BLAS release the GIL, so a second core helps). Results,
        alerts and state are exactly those of calling :meth:`score` on each batch in turn; alerts are emitted
        in order from the caller's thread. The scorer's lock is held from the first batch to the end.

        Parameters
        ----------
        batches : iterable of polars.DataFrame
            Canonical events, batch after batch, in arrival order.
        explain_alerts : bool, default=True
            Attach the top contributing features to each new alert.

        Yields
        ------
        ScoredBatch
            One per input batch, in order.
        """
        if self.online is not None:  # per-entity aggregates: nothing to overlap
            for events in batches:
                yield self.score(events, explain_alerts=explain_alerts)
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mamori-finish")
        pending: Future[ScoredBatch] | None = None
        try:
            with self._lock:
                for events in batches:
                    started = time.perf_counter()
                    try:
                        batch = self._checked_batch(events)
                        prepared = self._featurise(batch, False)
                    except BaseException:
                        # as with score() batch by batch: the batch before a bad one is scored and alerted
                        if pending is not None:
                            done, pending = pending.result(), None
                            self._emit(done)
                        raise
                    if pending is not None:
                        done = pending.result()
                        self._emit(done)
                        yield done
                    pending = pool.submit(self._finish, prepared, explain_alerts, started)
                if pending is not None:
                    done, pending = pending.result(), None
                    self._emit(done)
                    yield done
        finally:
            if pending is not None:
                pending.cancel()
            pool.shutdown(wait=True)

    def _checked_batch(self, events: pl.DataFrame) -> pl.DataFrame:
        """Canonical batch without labels; a null timestamp is refused."""
        batch = canonical_batch(events, "Scorer.score")
        if batch.height and batch.get_column("@timestamp").null_count():
            first = int(batch.get_column("@timestamp").is_null().arg_true()[0])
            raise SchemaError(f"Scorer.score: event {first} of the batch has no '@timestamp'; every event needs one.")
        return batch

    def _featurise(self, batch: pl.DataFrame, related_context: bool) -> _Prepared:
        """Features of a batch over the window state, then the batch joins the state (caller holds the lock)."""
        loaded = self._loaded
        if batch.height == 0:
            return _Prepared(loaded, batch, None, 0)
        context = self.state.context(batch, related=related_context)
        n_ctx = context.height
        frame = pl.concat([canonical_batch(context, "state"), batch], how="vertical") if n_ctx else batch
        try:
            fm = extract_features(frame, loaded.feature_config, first_row=n_ctx)
        except pl.exceptions.PolarsError as exc:
            raise SchemaError(f"Scorer.score: features cannot be computed for this batch of {batch.height} "
                              f"events: {type(exc).__name__}: {str(exc)[:200]}") from exc
        X = fm.X
        if fm.spec.names != loaded.extracted_names:
            raise SchemaError(
                "Scorer.score: the features extracted now do not match the model's feature spec "
                f"({fm.spec.n_features} vs {len(loaded.extracted_names)} columns); the model was built with "
                "another mamori version or feature config."
            )
        if loaded.campaign:
            hits = (self.indicators.campaign_hits(batch) if self.indicators is not None
                    else self._no_campaign_index(batch.height))
            X = np.hstack([X, hits[:, None]])
        self.state.append(batch)
        return _Prepared(loaded, batch, X, n_ctx)

    def _finish(self, prepared: _Prepared, explain_alerts: bool, started: float) -> ScoredBatch:
        """Standardise, score, deduplicate and build the alerts of a featurised batch (in batch order)."""
        loaded, batch = prepared.loaded, prepared.batch
        if prepared.X is None:
            return ScoredBatch(np.zeros(0, dtype=np.float32), loaded.bundle.threshold,
                               model_version=loaded.bundle.version, model_sha256=loaded.sha256)
        Z = loaded.standardize(prepared.X, inplace=True)  # X is ours: extract_features made it for this call
        prepared.X = None
        scores = np.asarray(loaded.decision_function(Z), dtype=np.float32)
        hit_idx = np.flatnonzero(scores > loaded.bundle.threshold)
        # the hits as columns: deduplication reads two fields per hit, and only raised alerts need whole rows
        hit_rows = _HitFrame(batch.select([c for c in self._alert_columns() if c in batch.columns])[
            hit_idx.tolist()]) if hit_idx.size else _HitRows([])
        alerts, alert_rows = self._alerts(hit_rows, Z, scores, hit_idx, loaded, explain_alerts)
        self.events_scored += batch.height
        self.hits += hit_idx.size
        self.alerts_raised += len(alerts)
        seconds = time.perf_counter() - started
        logger.debug("scored %d events (%d context) in %.3f s: %d hits, %d alerts", batch.height, prepared.n_ctx,
                     seconds, hit_idx.size, len(alerts))
        return ScoredBatch(scores, loaded.bundle.threshold, alerts, int(hit_idx.size), loaded.bundle.version,
                           loaded.sha256, seconds, alert_rows)

    def _emit(self, result: ScoredBatch) -> None:
        for alert in result.alerts:
            for sink in self.sinks:
                sink.emit(alert)

    def score_rows(self, rows: Sequence[dict[str, Any]], *, explain_alerts: bool = True) -> ScoredBatch:
        """Score canonical events given as ``column -> value`` dicts (the HTTP API's validated rows).

        With ``ScoringConfig.incremental`` no DataFrame is built at all; otherwise the rows become one frame for
        :meth:`score` (with ``related_context=True``).

        Parameters
        ----------
        rows : sequence of dict
            Canonical events in arrival order; ``@timestamp`` a timezone-aware datetime. Missing columns are
            null; ``labels.*`` are ignored.
        explain_alerts : bool, default=True
            Attach the top contributing features to each new alert.

        Returns
        -------
        ScoredBatch

        Raises
        ------
        SchemaError
            If an event has no ``@timestamp`` (or, without ``incremental``, does not fit the schema).
        """
        started = time.perf_counter()
        if self.online is None:
            from mamori.events import EVENT_SCHEMA

            columns = list(dict.fromkeys(c for r in rows for c in r if not c.startswith("labels.")))
            unknown = [c for c in columns if c not in EVENT_SCHEMA]
            if unknown:
                raise SchemaError(f"Scorer.score_rows: unknown columns {unknown[:5]}; use canonical (ECS) names.")
            frame = pl.from_dicts(list(rows), schema={c: EVENT_SCHEMA[c] for c in columns or ["@timestamp"]})
            return self.score(frame, related_context=True, explain_alerts=explain_alerts)
        for i, r in enumerate(rows):
            if r.get("@timestamp") is None:
                raise SchemaError(f"Scorer.score_rows: event {i} of the batch has no '@timestamp'; every event needs "
                                  "one.")
        return self._score_rows(list(rows), explain_alerts, started)

    def _score_rows(self, rows: list[dict[str, Any]], explain_alerts: bool, started: float) -> ScoredBatch:
        """The incremental path: aggregates -> feature rows -> standardise -> model -> alerts."""
        assert self.online is not None
        with self._lock:
            loaded = self._loaded
            online = self.online
            if not rows:
                return ScoredBatch(np.zeros(0, dtype=np.float32), loaded.bundle.threshold,
                                   model_version=loaded.bundle.version, model_sha256=loaded.sha256)
            X = online.transform(rows)
            if loaded.campaign:
                hits = (self.indicators.campaign_hit_rows(rows) if self.indicators is not None
                        else self._no_campaign_index(len(rows)))
                X = np.hstack([X, hits[:, None]])
            Z = loaded.standardize(X)
            scores = np.asarray(loaded.decision_function(Z), dtype=np.float32)
            hit_idx = np.flatnonzero(scores > loaded.bundle.threshold)
            alerts, alert_rows = self._alerts(_HitRows([rows[i] for i in hit_idx.tolist()]), Z, scores, hit_idx, loaded,
                                              explain_alerts)
            self.events_scored += len(rows)
            self.hits += hit_idx.size
            self.alerts_raised += len(alerts)
        for alert in alerts:
            for sink in self.sinks:
                sink.emit(alert)
        return ScoredBatch(scores, loaded.bundle.threshold, alerts, int(hit_idx.size), loaded.bundle.version,
                           loaded.sha256, time.perf_counter() - started, alert_rows)

    def _no_campaign_index(self, n: int) -> np.ndarray:
        """The campaign column when no indicator index is configured: zeros, with one warning per scorer."""
        if not self._warned_no_index:
            self._warned_no_index = True
            logger.warning("the model reads %s but no shared indicators are configured (--indicators / TAXII): "
                           "the column is 0 for every event, so the model scores as if no campaign were known",
                           CAMPAIGN_FEATURE)
        return np.zeros(n, dtype=np.float32)

    def _alert_columns(self) -> list[str]:
        return list(dict.fromkeys([*self.config.dedup_by, *_ENTITY_FIELDS, *_REQUEST_FIELDS, "@timestamp",
                                   "source.as.number", "user_agent.original", "tls.client.ja3", "url.domain"]))

    def _alerts(self, rows: _HitFrame | _HitRows, Z: np.ndarray, scores: np.ndarray,
                hit_idx: np.ndarray, loaded: _Loaded, explain_alerts: bool) -> tuple[list[Alert], list[int]]:
        """Deduplicate the hits (``rows``: the events of ``hit_idx``) and build the new alerts."""
        if hit_idx.size == 0:
            return [], []
        raised: list[int] = []
        kinds: list[tuple[str, str]] = []
        counts: list[int] = []
        maxima: list[float] = []
        slots: dict[str, int] = {}
        entities, stamps = rows.entities(self.config.dedup_by), rows.stamps()
        hit_scores = scores[hit_idx].tolist()
        for pos, (kind, value) in enumerate(entities):
            key_value = str(value) if value is not None else f"row-{self.events_scored + int(hit_idx[pos])}"
            key = f"{kind}={key_value}"
            score = float(hit_scores[pos])
            ts: dt.datetime = stamps[pos]
            if self.dedup.offer(key, ts.timestamp()):
                slots[key] = len(raised)
                raised.append(pos)
                kinds.append((kind, key_value))
                counts.append(1)
                maxima.append(score)
            elif key in slots:  # folded into an alert raised by this same batch
                counts[slots[key]] += 1
                maxima[slots[key]] = max(maxima[slots[key]], score)
        if not raised:
            return [], []
        sel = hit_idx[raised]
        rows_at = dict(zip(raised, rows.rows(raised), strict=True))
        Zs = Z[sel]
        fams = guess_families(Zs, loaded.bundle.families, loaded.bundle.centroids)
        tops: list[list[dict[str, Any]]] | None = None
        if explain_alerts and self.config.top_k > 0:
            if loaded.layers is not None:  # the classifier: NumPy gradients, no torch on the request path
                contrib = _integrated_gradients(loaded.layers, Zs, self.config.explain_steps)
                tops = _top_features(contrib, Zs, loaded.bundle.spec, self.config.top_k)
            else:
                tops = [[{"name": c.name, "group": c.group, "value": round(c.value, 4),
                          "contribution": round(c.contribution, 4)} for c in e.top]
                        for e in explain(loaded.detector, Zs, loaded.bundle.spec, top_k=self.config.top_k,
                                         steps=self.config.explain_steps)]
        model_info = {"name": loaded.bundle.name, "version": loaded.bundle.version, "sha256": loaded.sha256}
        out: list[Alert] = []
        for j, pos in enumerate(raised):
            row = rows_at[pos]
            kind, value = kinds[j]
            ts = row["@timestamp"]
            stamp = ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            entity = {"kind": kind, "value": value, **{c: row[c] for c in _ENTITY_FIELDS if row.get(c) is not None}}
            top = [] if tops is None else tops[j]
            matches = self.indicators.match(row) if self.indicators is not None else []
            score = float(scores[sel[j]])
            alert = Alert(
                id=alert_id(kind, value, stamp),
                timestamp=stamp,
                entity=entity,
                score=round(score, 4),
                threshold=round(float(loaded.bundle.threshold), 4),
                family=fams[j][0],
                family_similarity=None if fams[j][1] is None else round(fams[j][1], 4),
                top_features=top,
                indicators=matches,
                request={c: row.get(c) for c in _REQUEST_FIELDS},
                model=model_info,
                count=counts[j],
                max_score=round(maxima[j], 4),
            )
            out.append(alert)
        return out, [int(i) for i in sel]

    def stats(self) -> dict[str, object]:
        """Counters and state size (for metrics and the CLI).

        Returns
        -------
        dict
        """
        common = {"events_scored": self.events_scored, "hits": self.hits, "alerts": self.alerts_raised,
                  "dedup_entities": len(self.dedup), "suppressed": self.dedup.suppressed}
        if self.online is not None:
            # incremental aggregates: entities held (all kinds); per-entity window entries are not counted
            counts = self.online.entity_counts()
            return {**common, "state_events": 0, "state_entities": sum(counts.values()), "state_bytes": 0,
                    "state_evicted": self.online.evicted, "state_budget": self.config.max_entities,
                    "state_entities_by_kind": counts}
        s = self.state.stats()
        return {**common, "state_events": s.events, "state_entities": s.entities, "state_bytes": s.bytes,
                "state_evicted": s.evicted, "state_budget": s.max_events}
