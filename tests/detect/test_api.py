"""The scoring API: scores, model info, health, metrics, bad input -> 4xx, hot reload, a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from detect_support import running_server
from fastapi.testclient import TestClient

from mamori.detect import MemoryAlertSink, Scorer, ScoringConfig, ScoringModel
from mamori.detect.api import ServiceConfig, create_app
from mamori.detect.service import ModelWatcher, ScoringService
from mamori.store import ModelRegistry, open_store

EVENT = {
    "@timestamp": "2025-04-21T01:00:00Z",
    "source.ip": "203.0.113.9",
    "url.path": "/api/v1/login",
    "http.request.method": "POST",
    "http.response.status_code": 401,
    "user_agent.original": "python-requests/2.31",
    "user.name": "someone",
    "event.action": "login",
    "event.outcome": "failure",
}


@pytest.fixture(params=[False, True], ids=["window-state", "incremental"])
def service(tiny_model: ScoringModel, request: pytest.FixtureRequest) -> ScoringService:
    config = ScoringConfig(top_k=3, incremental=request.param)
    return ScoringService(Scorer(tiny_model, config, sinks=[MemoryAlertSink()]))


@pytest.fixture
def client(service: ScoringService) -> Iterator[TestClient]:
    with TestClient(create_app(service, ServiceConfig(max_body_bytes=1024 * 1024))) as c:
        yield c


def test_score_one_event_and_a_batch(client: TestClient, tiny_model: ScoringModel) -> None:
    one = client.post("/v1/score", json=EVENT)
    assert one.status_code == 200
    body = one.json()
    assert len(body["results"]) == 1 and body["model"]["threshold"] == pytest.approx(tiny_model.threshold)
    burst = [dict(EVENT, **{"@timestamp": f"2025-04-21T01:00:{i:02d}Z", "user.name": f"u{i}"}) for i in range(60)]
    many = client.post("/v1/score", json={"events": burst})
    assert many.status_code == 200
    results = many.json()["results"]
    assert len(results) == 60
    assert all(r["alert"] == (r["score"] > tiny_model.threshold) for r in results)
    assert len(many.json()["alerts"]) <= 1  # one entity, one window: at most one alert


def test_model_health_metrics_openapi(client: TestClient, tiny_model: ScoringModel) -> None:
    client.post("/v1/score", json=EVENT)
    model = client.get("/v1/model").json()
    assert model["version"] == tiny_model.version and len(model["sha256"]) == 64
    assert model["spec_fingerprint"] == tiny_model.spec.fingerprint()
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics").text
    for name in ("mamori_events_scored_total 1.0", "mamori_alerts_total", "mamori_score_latency_seconds_bucket",
                 "mamori_model_version", "mamori_model_info{"):
        assert name in metrics
    spec = client.get("/openapi.json").json()
    assert "/v1/score" in spec["paths"] and "/v1/model" in spec["paths"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (json.dumps({**EVENT, "http.response.status_code": "four-oh-one"}), {}, 422, "status_code"),
        (json.dumps({"source.ip": "1.2.3.4"}), {}, 422, "@timestamp"),
        (json.dumps({**EVENT, "labels.is_attack": True}), {}, 422, "labels.is_attack"),
        (json.dumps({"events": []}), {}, 422, "events"),
        (json.dumps({**EVENT, "@timestamp": "0001-01-01T00:00:00"}), {}, 422, "1970-2200"),
        (b'{"@timestamp": "2025-04-21T01:00:00Z", "url.path": "\xff\xfe"}', {}, 400, "parsing"),
        (b"x" * (2 * 1024 * 1024), {}, 413, "exceeds"),
        (b"not json", {}, 422, "JSON"),
    ],
    ids=["wrong-type", "missing-timestamp", "ground-truth", "empty-batch", "ancient", "invalid-utf8", "too-large",
         "not-json"],
)
def test_bad_input_is_4xx_and_service_keeps_serving(client: TestClient, body: bytes | str, headers: dict,
                                                    status: int, needle: str) -> None:
    response = client.post("/v1/score", content=body, headers={"content-type": "application/json", **headers})
    assert response.status_code == status
    assert needle.lower() in response.text.lower()
    assert client.post("/v1/score", json=EVENT).status_code == 200


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    response = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_hot_reload_from_registry(service: ScoringService, tiny_model: ScoringModel, tmp_path: Path) -> None:
    # Prepare
    registry = ModelRegistry(open_store(f"sqlite:///{tmp_path / 'r.db'}"))
    tiny_model.register(registry)
    watcher = ModelWatcher(service, registry=registry, name=tiny_model.name, interval=0.05)
    assert not watcher.check()  # the registered bundle is the one being served: same hash, no reload

    with TestClient(create_app(service, watcher=watcher)) as client:
        before = client.get("/v1/model").json()
        # Execute: the coordinator publishes round 3's global model (bare weights)
        registry.register(tiny_model.name, 3, [w * 0.5 for w in tiny_model.weights], {"round": 3})
        deadline = time.monotonic() + 10
        while client.get("/v1/model").json()["version"] != 3 and time.monotonic() < deadline:
            assert client.post("/v1/score", json=EVENT).status_code == 200  # keeps serving meanwhile
            time.sleep(0.05)
        after = client.get("/v1/model").json()

    # Assert
    assert after["version"] == 3 and after["sha256"] != before["sha256"]
    assert after["threshold"] == before["threshold"]
    assert 'outcome="ok"' in service.metrics.render().decode()


def test_live_server_on_a_free_port(service: ScoringService) -> None:
    with running_server(create_app(service)) as url:
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert http.post("/v1/score", json=EVENT).status_code == 200
            assert http.post("/v1/score", content=b"{", headers={"content-type": "application/json"}).status_code \
                == 422
            assert http.post("/v1/score", json=EVENT).status_code == 200


def test_fast_path_answers_as_the_fastapi_route(tiny_model: ScoringModel) -> None:
    # Prepare: two identical services, one app with the fast path and one with FastAPI's route only
    from mamori.detect.api.fastpath import ScoreFastPath

    def app(fast: bool):  # type: ignore[no-untyped-def]
        service = ScoringService(Scorer(tiny_model, ScoringConfig(top_k=3, incremental=True, dedup_window="1h")))
        built = create_app(service, ServiceConfig(max_body_bytes=1024 * 1024))
        if not fast:
            built.user_middleware = [m for m in built.user_middleware if m.cls is not ScoreFastPath]
        return built, service

    burst = [dict(EVENT, **{"@timestamp": f"2025-04-21T01:{i // 60:02d}:{i % 60:02d}Z", "user.name": f"u{i}"})
             for i in range(120)]
    bodies: list[bytes | str] = [json.dumps(e) for e in burst[:40]] + [json.dumps({"events": burst[40:]})]
    bad: list[bytes | str] = ['{"@timestamp": "2400-01-01T00:00:00Z"}', '{"source.ip": "1.2.3.4"}', b"\xff{",
                              "[1, 2]", '{"@timestamp": "2025-04-21T01:00:00Z", "labels.is_attack": true}']

    # Execute
    answers = []
    for fast in (True, False):
        built, service = app(fast)
        with TestClient(built) as c:
            got = [(r.status_code, r.content) for r in
                   (c.post("/v1/score", content=b, headers={"content-type": "application/json"})
                    for b in [*bodies, *bad])]
            metrics = c.get("/metrics").text
        answers.append((got, service.scorer.events_scored,
                        [line for line in metrics.splitlines() if line.startswith("mamori_score_requests_total")]))

    # Assert: the same status and bytes for every request, the same counters
    assert answers[0] == answers[1]
    assert [s for s, _ in answers[0][0]] == [200] * 41 + [422, 422, 400, 422, 422]
    assert any(json.loads(body)["alerts"] for _, body in answers[0][0][:41])


def test_idle_service_scores_inline_and_keeps_arrival_order(tiny_model: ScoringModel) -> None:
    # Prepare: events of one entity, so every score depends on the ones before it
    import asyncio
    import datetime as dt

    rows = [{"@timestamp": dt.datetime(2025, 4, 21, 1, 0, i, tzinfo=dt.UTC), "source.ip": "203.0.113.9",
             "url.path": "/api/v1/login", "http.request.method": "POST", "http.response.status_code": 401,
             "user.name": f"u{i}", "event.action": "login", "event.outcome": "failure"} for i in range(40)]
    reference = Scorer(tiny_model, ScoringConfig(incremental=True)).score_rows(rows, explain_alerts=False).scores
    service = ScoringService(Scorer(tiny_model, ScoringConfig(incremental=True)))
    queued = []

    async def run() -> list[float]:
        await service.start()
        original = service._queue.put  # type: ignore[union-attr]

        async def spy(item):  # type: ignore[no-untyped-def]
            queued.append(item)
            await original(item)

        service._queue.put = spy  # type: ignore[union-attr,method-assign]
        try:
            one_by_one = [float((await service.score_rows([r])).scores[0]) for r in rows[:20]]
            together = await asyncio.gather(*(service.score_rows([r]) for r in rows[20:]))
            return one_by_one + [float(r.scores[0]) for r in together]
        finally:
            await service.stop()

    # Execute
    scores = asyncio.run(run())

    # Assert: sequential requests never touched the queue; all scores are those of in-order scoring. One row at a
    # time and 40 rows in one batch go through different float32 matrix kernels (on an AMD EPYC of family 25 the first
    # score differed by 2e-6 relative), while out-of-order scoring would move scores by 0.05 or more.
    assert len(queued) < 20
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-6)
