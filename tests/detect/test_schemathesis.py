"""Property-based API test: schemathesis generates requests from the OpenAPI spec; no answer may be a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from detect_support import running_server
from hypothesis import HealthCheck, given, settings

from mamori.detect import Scorer, ScoringConfig, ScoringModel
from mamori.detect.api import create_app
from mamori.detect.service import ScoringService


@pytest.mark.slow
def test_no_server_errors_on_generated_requests(tiny_model: ScoringModel) -> None:
    # Prepare: a live server on a free port
    service = ScoringService(Scorer(tiny_model, ScoringConfig(top_k=2, max_state_events=20_000)))
    failures: list[str] = []
    calls = 0
    with running_server(create_app(service)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        for result, mode in [(r, m) for r in schema.get_all_operations()
                             for m in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)]:
            operation = result.ok()
            if mode is schemathesis.GenerationMode.NEGATIVE and operation.method.upper() != "POST":
                continue

            @settings(max_examples=60 if operation.method.upper() == "POST" else 5, deadline=None,
                      suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                # Execute
                response = case.call(base_url=url, timeout=30)
                calls += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")

            run()
        # the server still answers after all that
        import httpx

        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    # Assert
    assert calls > 120
    assert failures == []
