"""The scoring service behind the HTTP API: micro-batched scoring, hot model reload, metrics."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mamori.detect.bundle import ScoringModel
from mamori.detect.metrics import ServiceMetrics
from mamori.detect.scorer import ScoredBatch, Scorer
from mamori.errors import MamoriError

__all__ = ["ModelWatcher", "ScoringService", "RequestResult"]

logger = logging.getLogger(__name__)


@dataclass
class RequestResult:
    """The part of a scoring batch that belongs to one request."""

    scores: np.ndarray
    alert_flags: np.ndarray
    alerts: list[dict[str, Any]]
    threshold: float
    model_version: int
    model_sha256: str


class ScoringService:
    """Serialises scoring of concurrent requests into micro-batches over one :class:`Scorer`.

    Requests queue up while a batch is being scored; the next batch takes every queued request (up to
    ``max_batch_events`` events), so the fixed cost of feature extraction is shared and the window state is
    updated in arrival order.

    Parameters
    ----------
    scorer : Scorer
        The scorer (model, window state, alert sinks).
    max_batch_events : int, default=20000
        Events per internal batch.
    inline_events : int, default=32
        With an incremental scorer, micro-batches of at most this many events are scored on the event loop
        itself (a fraction of a millisecond each); larger ones in a worker thread so the loop stays responsive.
    """

    def __init__(self, scorer: Scorer, max_batch_events: int = 20_000, inline_events: int = 32) -> None:
        self.scorer = scorer
        self.max_batch_events = max_batch_events
        self.inline_events = inline_events
        self.metrics = ServiceMetrics()
        self._queue: asyncio.Queue[tuple[pl.DataFrame | list[dict[str, Any]], asyncio.Future[RequestResult]]] | None \
            = None
        self._worker: asyncio.Task[None] | None = None
        self._busy = False  # the worker holds a micro-batch (scoring it, or waiting for its thread)
        self.started_at = time.time()
        self._on_model()

    def _on_model(self) -> None:
        m = self.scorer.model
        self.metrics.set_model(m.name, m.version, self.scorer.model_sha256)

    async def start(self) -> None:
        """Start the batching worker (call from the event loop, e.g. in the app's lifespan)."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="mamori-scoring-worker")

    async def stop(self) -> None:
        """Stop the worker."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    async def score(self, events: pl.DataFrame) -> RequestResult:
        """Queue events for the next micro-batch and wait for their scores.

        Parameters
        ----------
        events : polars.DataFrame
            Canonical events of one request.

        Returns
        -------
        RequestResult
        """
        if self._queue is None:
            raise MamoriError("ScoringService.score: the service is not started (call start() first).")
        future: asyncio.Future[RequestResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((events, future))
        return await future

    async def score_rows(self, rows: list[dict[str, Any]]) -> RequestResult:
        """Like :meth:`score`, for canonical rows (column -> value); the frame is built once per micro-batch.

        Parameters
        ----------
        rows : list of dict
            Canonical events of one request.

        Returns
        -------
        RequestResult
        """
        if self._queue is None:
            raise MamoriError("ScoringService.score_rows: the service is not started (call start() first).")
        if (not self._busy and self._queue.empty() and len(rows) <= self.inline_events
                and self.scorer.incremental):
            # nothing queued and nothing in flight: scoring right here keeps the arrival order and saves the hop
            # through the queue, a future and two task switches (the usual case for single events)
            return self._part(self._score_sync(rows), 0, len(rows))
        future: asyncio.Future[RequestResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((rows, future))
        return await future

    @staticmethod
    def _frame(part: pl.DataFrame | list[dict[str, Any]]) -> pl.DataFrame:
        if isinstance(part, pl.DataFrame):
            return part
        from mamori.events import EVENT_SCHEMA

        columns = list(part[0]) if part else ["@timestamp"]
        return pl.from_dicts(part, schema={c: EVENT_SCHEMA[c] for c in columns})

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            self._busy = False
            raw = [await self._queue.get()]
            self._busy = True
            n = len(raw[0][0]) if isinstance(raw[0][0], list) else raw[0][0].height
            while n < self.max_batch_events and not self._queue.empty():
                item = self._queue.get_nowait()
                raw.append(item)
                n += len(item[0]) if isinstance(item[0], list) else item[0].height
            try:
                rows = [r for part, _ in raw if isinstance(part, list) for r in part]
                batch: pl.DataFrame | list[dict[str, Any]]
                if len(rows) == n and self.scorer.incremental:  # no frame at all: aggregates read the rows
                    batch = rows
                    sizes = [len(part) for part, _ in raw]  # type: ignore[arg-type]
                elif len(rows) == n:  # all requests came as rows: one frame for the whole batch
                    frames = [self._frame(rows)]
                    batch = frames[0]
                    sizes = [len(part) for part, _ in raw]  # type: ignore[arg-type]
                else:
                    frames = [self._frame(part) for part, _ in raw]
                    batch = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
                    sizes = [f.height for f in frames]
                items = [(size, fut) for size, (_, fut) in zip(sizes, raw, strict=True)]
                result: ScoredBatch
                if isinstance(batch, list) and n <= self.inline_events:
                    # a few events cost a fraction of a millisecond from the aggregates: a hop to a worker
                    # thread (and back, under the GIL) would cost more than the work
                    result = self._score_sync(batch)
                else:
                    result = await loop.run_in_executor(None, self._score_sync, batch)
            except Exception as exc:  # noqa: BLE001 - delivered to each waiting request, which maps it to HTTP
                if len(raw) > 1 and isinstance(exc, MamoriError):
                    # one bad request must not fail its neighbours: score them one by one
                    for part, fut in raw:
                        try:
                            one = part if isinstance(part, list) and self.scorer.incremental else self._frame(part)
                            single = await loop.run_in_executor(None, self._score_sync, one)
                            self._deliver([(len(one), fut)], single)
                        except Exception as one_exc:  # noqa: BLE001
                            if not fut.done():
                                fut.set_exception(one_exc)
                    continue
                for _, fut in raw:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self._deliver(items, result)

    def _score_sync(self, batch: pl.DataFrame | list[dict[str, Any]]) -> ScoredBatch:
        if isinstance(batch, list):
            result = self.scorer.score_rows(batch)
        else:
            result = self.scorer.score(batch, related_context=True)
        self.metrics.events.inc(len(batch))
        self.metrics.hits.inc(result.hits)
        self.metrics.alerts.inc(len(result.alerts))
        self.metrics.batch_size.observe(len(batch))
        if self.scorer.incremental:
            self.metrics.state_entities.set(sum(self.scorer.online.entity_counts().values()))  # type: ignore[union-attr]
        else:
            stats = self.scorer.state.stats()
            self.metrics.state_events.set(stats.events)
            self.metrics.state_bytes.set(stats.bytes)
        return result

    @staticmethod
    def _part(result: ScoredBatch, start: int, stop: int) -> RequestResult:
        """The rows ``[start, stop)`` of a scored micro-batch: one request's answer."""
        mine = [a.to_dict() for a, r in zip(result.alerts, result.alert_rows, strict=True) if start <= r < stop]
        return RequestResult(result.scores[start:stop], result.scores[start:stop] > result.threshold, mine,
                             result.threshold, result.model_version, result.model_sha256)

    @classmethod
    def _deliver(cls, items: list[tuple[int, asyncio.Future[RequestResult]]], result: ScoredBatch) -> None:
        start = 0
        for size, fut in items:
            stop = start + size
            if not fut.done():
                fut.set_result(cls._part(result, start, stop))
            start = stop

    def reload(self, model: ScoringModel) -> None:
        """Swap in a new model (requests in flight finish with the old one).

        Parameters
        ----------
        model : ScoringModel
            The new bundle.
        """
        self.scorer.set_model(model)
        self._on_model()
        self.metrics.reloads.labels(outcome="ok").inc()


class ModelWatcher:
    """Polls the model source and hot-reloads the service when the model's hash changes.

    Parameters
    ----------
    service : ScoringService
        The service to reload.
    model_path : str or pathlib.Path or None, default=None
        A bundle file to watch (reloaded when its content changes).
    registry : ModelRegistry or None, default=None
        A registry to watch: the latest entry of ``name`` (a bundle, or a bare global-model checkpoint
        applied to the current bundle).
    name : str or None, default=None
        Model name in the registry.
    interval : float, default=5.0
        Seconds between polls.
    """

    def __init__(self, service: ScoringService, *, model_path: str | Path | None = None, registry: Any = None,
                 name: str | None = None, interval: float = 5.0) -> None:
        self.service = service
        self.model_path = None if model_path is None else Path(model_path)
        self.registry = registry
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = self.service.scorer.model_sha256
        self._file_sig: tuple[float, int] | None = self._signature()

    def _signature(self) -> tuple[float, int] | None:
        if self.model_path is None:
            return None
        try:
            st = self.model_path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    def check(self) -> bool:
        """Poll once; return True when a new model was loaded."""
        try:
            if self.registry is not None:
                records = self.registry.list(self.name)
                if not records:
                    return False
                latest = max(records, key=lambda r: (r.version, r.id))
                if latest.sha256 == self._last:
                    return False
                model = ScoringModel.from_registry(self.registry, latest.sha256, name=self.name,
                                                   base=self.service.scorer.model)
                self._last = latest.sha256
            elif self.model_path is not None:
                sig = self._signature()
                if sig is None or sig == self._file_sig:
                    return False
                model = ScoringModel.load(self.model_path)
                self._file_sig = sig
                if model.sha256 == self._last:
                    return False
                self._last = model.sha256
            else:
                return False
        except MamoriError as exc:
            self.service.metrics.reloads.labels(outcome="error").inc()
            logger.warning("model reload failed, keeping the current model: %s", exc)
            return False
        self.service.reload(model)
        return True

    def start(self) -> None:
        """Poll in a daemon thread."""
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.check()

        self._thread = threading.Thread(target=loop, name="mamori-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
