"""Alerts: what a SOC receives — deduplicated per entity and window, explained, with shared indicators."""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

__all__ = [
    "Alert",
    "AlertDeduplicator",
    "AlertSink",
    "JsonlAlertSink",
    "MemoryAlertSink",
    "WebhookAlertSink",
    "guess_families",
]

logger = logging.getLogger(__name__)

_ALERT_NAMESPACE = uuid.UUID("6d616d6f-7269-5f61-6c65-7274735f6e73")


@dataclass
class Alert:
    """One alert: an entity crossed the threshold.

    Attributes
    ----------
    id : str
        Deterministic id (entity and first event time), so a replay raises the same id.
    timestamp : str
        Event time of the first event over the threshold (ISO 8601, UTC).
    entity : dict
        ``{"kind": <column>, "value": <value>}`` plus the event's ``source.ip``, ``user.name``, ``user.id``,
        ``session.id`` when present.
    score : float
        The model's score (logit) of that event.
    threshold : float
        The bank's threshold.
    family : str or None
        Guessed attack family (nearest family centroid), None when the model has none.
    family_similarity : float or None
        Cosine similarity to that centroid.
    top_features : list of dict
        ``{"name", "group", "value", "contribution"}``: what pushed the score up.
    indicators : list of dict
        Shared indicators (TAXII) matching the event: ``{"id", "name", "pattern", "field"}``.
    request : dict
        Method, path, status, action, outcome of the event.
    model : dict
        ``{"name", "version", "sha256"}`` of the model that scored it.
    count : int
        Events of this entity over the threshold in the deduplication window so far (1 when raised).
    """

    id: str
    timestamp: str
    entity: dict[str, Any]
    score: float
    threshold: float
    family: str | None
    family_similarity: float | None
    top_features: list[dict[str, Any]]
    indicators: list[dict[str, Any]]
    request: dict[str, Any]
    model: dict[str, Any]
    count: int = 1
    max_score: float = field(default=float("nan"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``timestamp`` as ``@timestamp``)."""
        # dataclasses.asdict deep-copies every nested value (it dominated alert output in a batch profile);
        # the nested values are plain JSON, so one level of copying is enough to keep the alert unshared.
        d: dict[str, Any] = {}
        for f in _ALERT_FIELDS:
            value = getattr(self, f)
            if isinstance(value, dict):
                value = dict(value)
            elif isinstance(value, list):
                value = [dict(v) if isinstance(v, dict) else v for v in value]
            d[f] = value
        d["@timestamp"] = d.pop("timestamp")
        if np.isnan(d["max_score"]):
            d["max_score"] = d["score"]
        return d

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


_ALERT_FIELDS = tuple(f.name for f in fields(Alert))


def alert_id(kind: str, value: str, timestamp: str) -> str:
    """Deterministic alert id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{kind}\x1f{value}\x1f{timestamp}"))


class AlertDeduplicator:
    """One alert per entity per window, in bounded memory.

    Parameters
    ----------
    window_seconds : float
        A hit of an entity within this many seconds (event time) after its last raised alert is folded into
        it (the count grows) instead of raising a new one.
    max_entities : int
        At most this many entities are remembered; the least recently alerted are forgotten first.
    """

    def __init__(self, window_seconds: float, max_entities: int) -> None:
        self.window_seconds = window_seconds
        self.max_entities = max_entities
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.suppressed = 0

    def offer(self, key: str, t_seconds: float) -> bool:
        """Record a hit; return True when it raises a new alert.

        Parameters
        ----------
        key : str
            The entity.
        t_seconds : float
            Event time, seconds since the epoch.

        Returns
        -------
        bool
        """
        prev = self._last.get(key)
        if prev is not None and 0 <= t_seconds - prev[0] < self.window_seconds:
            self._last[key] = (prev[0], prev[1] + 1)
            self._last.move_to_end(key)
            self.suppressed += 1
            return False
        self._last[key] = (t_seconds, 1)
        self._last.move_to_end(key)
        while len(self._last) > self.max_entities:
            self._last.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._last)

    def to_dict(self) -> dict[str, Any]:
        """Serialisable state (to resume after a restart without re-alerting)."""
        return {"window_seconds": self.window_seconds, "entries": [[k, t, c] for k, (t, c) in self._last.items()],
                "suppressed": self.suppressed}

    def load_dict(self, data: dict[str, Any]) -> None:
        """Restore :meth:`to_dict` output."""
        self._last = OrderedDict((str(k), (float(t), int(c))) for k, t, c in data.get("entries", []))
        self.suppressed = int(data.get("suppressed", 0))
        while len(self._last) > self.max_entities:
            self._last.popitem(last=False)


def guess_families(Z: np.ndarray, families: tuple[str, ...], centroids: np.ndarray | None
                   ) -> list[tuple[str | None, float | None]]:
    """Nearest attack-family centroid (cosine similarity) of each standardised row.

    Parameters
    ----------
    Z : numpy.ndarray
        Shape ``(n, d)``, standardised rows.
    families : tuple of str
        Names of the centroid rows.
    centroids : numpy.ndarray or None
        Shape ``(k, d)``.

    Returns
    -------
    list of (str or None, float or None)
        Family and similarity per row; ``(None, None)`` without centroids.
    """
    if centroids is None or not families or Z.shape[0] == 0:
        return [(None, None)] * Z.shape[0]
    C = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
    Zn = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-9)
    sim = Zn @ C.T
    best = sim.argmax(axis=1)
    return [(families[int(b)], float(sim[i, b])) for i, b in enumerate(best)]


class AlertSink(Protocol):
    """Where alerts go."""

    def emit(self, alert: Alert) -> None:
        """Deliver one alert."""

    def close(self) -> None:
        """Flush and release resources."""


class MemoryAlertSink:
    """Keeps alerts in a list (tests, the HTTP API's response)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alert: Alert) -> None:
        """Append."""
        self.alerts.append(alert)

    def close(self) -> None:
        """Nothing to do."""


class JsonlAlertSink:
    """Appends one JSON line per alert to a file (or a text stream), flushed per alert.

    Parameters
    ----------
    target : str or pathlib.Path or text stream
        File to append to, or an open stream (e.g. ``sys.stdout``).
    """

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            self._stream: IO[str] = Path(target).open("a", encoding="utf-8")
            self._owned = True
        else:
            self._stream = target
            self._owned = False
        self.count = 0

    def emit(self, alert: Alert) -> None:
        """Write a line."""
        self._stream.write(alert.to_json() + "\n")
        self._stream.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file if this sink opened it."""
        if self._owned:
            self._stream.close()


class WebhookAlertSink:
    """POSTs each alert as JSON to a URL from a background thread (scoring never waits for the webhook).

    Parameters
    ----------
    url : str
        The webhook (``http://`` or ``https://``).
    timeout : float, default=5.0
        Seconds per request.
    max_queue : int, default=10000
        Alerts waiting beyond this are dropped (counted in :attr:`dropped`) rather than growing memory.
    retries : int, default=2
        Extra attempts per alert on a connection error or 5xx.
    """

    def __init__(self, url: str, timeout: float = 5.0, max_queue: int = 10_000, retries: int = 2) -> None:
        if not url.startswith(("http://", "https://")):
            from mamori.errors import ConfigError

            raise ConfigError(f"WebhookAlertSink: url must start with http:// or https://; got {url[:40]!r}.")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="mamori-webhook", daemon=True)
        self._thread.start()

    def emit(self, alert: Alert) -> None:
        """Queue for delivery."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                    if response.status < 500:
                        return True
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    logger.warning("webhook: %s answered %d; alert not retried", self.url, exc.code)
                    return False
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                logger.debug("webhook attempt %d failed: %s", attempt + 1, exc)
        return False

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                self._queue.task_done()
                return
            if self._post(alert.to_json().encode()):
                self.sent += 1
            else:
                self.failed += 1
                logger.warning("webhook: could not deliver alert %s to %s", alert.id, self.url)
            self._queue.task_done()

    def close(self) -> None:
        """Deliver what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=self.timeout * (self.retries + 1) * 2 + 5)
