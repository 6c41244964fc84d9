"""Prometheus metrics of the scoring service (one registry per service, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """Counters, gauges and the latency histogram of one scoring service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("mamori_events_scored", "Events scored.", registry=r)
        self.hits = Counter("mamori_events_over_threshold", "Events whose score exceeded the threshold.", registry=r)
        self.alerts = Counter("mamori_alerts", "Alerts raised (after deduplication).", registry=r)
        self.requests = Counter("mamori_score_requests", "POST /v1/score requests by outcome.", ["outcome"],
                                registry=r)
        self.latency = Histogram("mamori_score_latency_seconds", "Time to answer POST /v1/score.",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("mamori_score_batch_events", "Events per internal scoring batch.",
                                    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000), registry=r)
        self.model_version = Gauge("mamori_model_version", "Version of the model in use.", registry=r)
        self.model_info = Gauge("mamori_model_info", "The model in use (value 1).", ["name", "version", "sha256"],
                                registry=r)
        self.reloads = Counter("mamori_model_reloads", "Hot reloads of the model.", ["outcome"], registry=r)
        self.state_events = Gauge("mamori_state_events", "Events held in the window state.", registry=r)
        self.state_bytes = Gauge("mamori_state_bytes", "Estimated memory of the window state.", registry=r)
        self.state_entities = Gauge("mamori_state_entities",
                                    "Entities held by the incremental per-entity aggregates (all kinds).", registry=r)

    def set_model(self, name: str, version: int, sha256: str) -> None:
        """Record the model in use."""
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version), sha256=sha256).set(1)
        self.model_version.set(version)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
