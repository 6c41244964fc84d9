"""Batch scoring of log files: read → features (with carried window state) → model → alerts, chunk by chunk."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mamori.detect.scorer import Scorer
from mamori.errors import MamoriError, SchemaError
from mamori.events import Quarantine, ReadSummary, iter_event_batches

__all__ = ["BatchSummary", "score_path"]

logger = logging.getLogger(__name__)

#: ``progress(events_so_far, alerts_so_far)``; the CLI renders it.
BatchProgress = Callable[[int, int], None]


@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes
    ----------
    files : list of str
        Files read, in order.
    events : int
        Events scored.
    hits : int
        Events over the threshold.
    alerts : int
        Alerts raised (after deduplication).
    quarantined : int
        Lines that did not parse.
    seconds : float
        Wall time.
    errors : list of str
        One message per file that could not be read to its end (a truncated upload, a format that cannot be
        recognised); its events before the error and every other file's were scored.
    """

    files: list[str] = field(default_factory=list)
    events: int = 0
    hits: int = 0
    alerts: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Throughput."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not found:
            raise SchemaError(f"score_path: directory '{path}' holds no files to score.")
        yield from found
    elif path.exists():
        yield path
    else:
        raise SchemaError(f"score_path: '{path}' does not exist; pass a log file or a directory of logs.")


def _read_all(path: Path, fmt: str, quarantine: Quarantine | None, batch_lines: int, summary: BatchSummary
              ) -> Iterator[pl.DataFrame]:
    """Event batches of every file in order (files and quarantine counts recorded in ``summary``)."""
    for file in _files(path):
        read = ReadSummary(source=file.name, format=fmt)
        summary.files.append(str(file))
        # a read error stops this file only: what it gave before is scored, and so is every other file
        errors: list[MamoriError] = []
        yield from iter_event_batches(file, fmt, quarantine=quarantine, batch_lines=batch_lines, summary=read,
                                      errors=errors)
        for exc in errors:
            summary.errors.append(str(exc))
            logger.error("score_path: %s", exc)
        summary.quarantined += read.quarantined


def _prefetched(batches: Iterator[pl.DataFrame], max_rows: int) -> Iterator[pl.DataFrame]:
    """Run the reader ahead in a thread (parsing is polars work, off the GIL) while the caller scores.

    Up to ``max_rows`` read events wait (always at least one batch), so memory stays bounded; a reader error is
    re-raised in the caller. The bound is in events, not batches: the reader hands out batches of one read
    chunk (about 40,000 nginx lines) while a scoring call takes ``batch_lines`` events, so a bound of two batches
    left the reader idle through most of a scoring call and parsing ran in series with it.
    """
    items: deque[tuple[str, object, int]] = deque()
    cond = threading.Condition()
    queued = 0
    stop = threading.Event()

    def put(kind: str, item: object, rows: int) -> bool:
        nonlocal queued
        with cond:
            while items and queued + rows > max_rows and not stop.is_set():
                cond.wait(timeout=0.2)  # the consumer may have stopped early (an error while scoring)
            if stop.is_set():
                return False
            items.append((kind, item, rows))
            queued += rows
            cond.notify_all()
        return True

    def produce() -> None:
        try:
            for item in batches:
                if not put("batch", item, item.height):
                    return
            put("end", None, 0)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put("error", exc, 0)

    thread = threading.Thread(target=produce, name="mamori-reader", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not items:
                    cond.wait()
                kind, item, rows = items.popleft()
                queued -= rows
                cond.notify_all()
            if kind == "end":
                return
            if kind == "error":
                raise item  # type: ignore[misc]
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        with cond:
            cond.notify_all()
        thread.join(timeout=5)


def score_path(
    path: str | Path,
    scorer: Scorer,
    *,
    fmt: str = "auto",
    batch_lines: int = 250_000,
    quarantine: Quarantine | None = None,
    explain_alerts: bool = True,
    progress: BatchProgress | None = None,
) -> BatchSummary:
    """Score a log file, or every file of a directory in name order, carrying window state across chunks/files.

    Parameters
    ----------
    path : str or pathlib.Path
        A log file (gzip is fine) or a directory.
    scorer : Scorer
        Scores and emits alerts to its sinks.
    fmt : str, default="auto"
        Log format (``nginx``, ``alb``, ``envoy``, ``ecs``, ``csic``, ...) or ``auto`` per file.
    batch_lines : int, default=250000
        Events scored per call (the reader's batches are gathered up to this many): the window state is
        re-read once per call, so larger is faster; memory grows with it.
    quarantine : Quarantine or None, default=None
        Where unparseable lines go.
    explain_alerts : bool, default=True
        Attach contributing features to alerts.
    progress : callable or None, default=None
        ``progress(events, alerts)`` after each chunk.

    Returns
    -------
    BatchSummary

    Raises
    ------
    SchemaError
        If the path does not exist, or no file could be read at all. A file that breaks off or cannot be read
        when others can is named in :attr:`BatchSummary.errors` instead, after its readable events are scored.
    """
    started = time.perf_counter()
    summary = BatchSummary()

    def chunks() -> Iterator[pl.DataFrame]:
        # Readers hand out smaller batches than batch_lines; scoring pays for the window state once per call, so
        # batches are gathered up to batch_lines events first (across files too: state carries over anyway).
        # The reader may run a whole scoring call ahead: it parses the next chunk while this one is scored.
        pending: list[pl.DataFrame] = []
        pending_rows = 0
        for events in _prefetched(_read_all(Path(path), fmt, quarantine, batch_lines, summary),
                                  max_rows=batch_lines):
            pending.append(events)
            pending_rows += events.height
            if pending_rows >= batch_lines:
                yield pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]
                pending, pending_rows = [], 0
        if pending:
            yield pl.concat(pending, how="vertical") if len(pending) > 1 else pending[0]

    # chunk n is scored and its alerts built in a worker while chunk n + 1's features are extracted
    for result in scorer.score_batches(chunks(), explain_alerts=explain_alerts):
        summary.events += result.scores.size
        summary.hits += result.hits
        summary.alerts += len(result.alerts)
        if progress is not None:
            progress(summary.events, summary.alerts)
    summary.seconds = time.perf_counter() - started
    if summary.errors and summary.events == 0:  # nothing could be read: an error, not an empty result
        raise SchemaError("; ".join(summary.errors))
    logger.info("score_path: %d events, %d alerts in %.1f s (%.0f events/s)", summary.events, summary.alerts,
                summary.seconds, summary.events_per_second)
    return summary
