"""Alerts: one per entity and window, family guesses, JSON lines and webhook delivery."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
from detect_support import free_port

from mamori.detect import Alert, AlertDeduplicator, JsonlAlertSink, WebhookAlertSink, guess_families


def _alert(i: int = 0) -> Alert:
    return Alert(id=f"a{i}", timestamp="2025-04-21T00:00:00Z", entity={"kind": "source.ip", "value": "203.0.113.7"},
                 score=3.0, threshold=1.0, family="credential_stuffing", family_similarity=0.9, top_features=[],
                 indicators=[], request={}, model={"name": "m", "version": 1, "sha256": "x"})


def test_dedup_one_alert_per_entity_and_window() -> None:
    dedup = AlertDeduplicator(window_seconds=600, max_entities=10)
    raised = [dedup.offer("ip=1", t) for t in range(0, 1200, 10)]  # 120 hits over 20 minutes
    assert sum(raised) == 2  # t=0 and t=600
    assert dedup.suppressed == 118
    assert dedup.offer("ip=2", 5)


def test_dedup_table_is_bounded_and_restorable() -> None:
    dedup = AlertDeduplicator(window_seconds=600, max_entities=100)
    for i in range(1000):
        dedup.offer(f"ip={i}", float(i))
    assert len(dedup) == 100
    other = AlertDeduplicator(window_seconds=600, max_entities=100)
    other.load_dict(json.loads(json.dumps(dedup.to_dict())))
    assert not other.offer("ip=999", 1000.0)  # still inside its window after a restart
    assert other.offer("ip=0", 1000.0)  # forgotten (least recently alerted)


def test_guess_families_nearest_centroid() -> None:
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    guesses = guess_families(np.array([[2.0, 0.1], [0.1, -0.0 + 3.0]]), ("stuffing", "scraping"), centroids)
    assert [g[0] for g in guesses] == ["stuffing", "scraping"]
    assert guess_families(np.zeros((1, 2)), (), None) == [(None, None)]


def test_jsonl_sink(tmp_path) -> None:
    sink = JsonlAlertSink(tmp_path / "alerts.jsonl")
    sink.emit(_alert(1))
    sink.emit(_alert(2))
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [d["id"] for d in lines] == ["a1", "a2"]
    assert lines[0]["@timestamp"] == "2025-04-21T00:00:00Z" and lines[0]["max_score"] == 3.0


def test_webhook_sink_posts_json() -> None:
    # Prepare: a local receiver on a free port
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # Execute
        sink = WebhookAlertSink(f"http://127.0.0.1:{server.server_address[1]}/hook", timeout=5)
        sink.emit(_alert(1))
        sink.emit(_alert(2))
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    # Assert
    assert [r["id"] for r in received] == ["a1", "a2"]
    assert sink.sent == 2 and sink.failed == 0
