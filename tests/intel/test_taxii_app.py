"""In-process checks of the app factory, the exception handler and the rate limiter."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mamori.errors import StoreError
from mamori.intel.taxii import TaxiiConfig, add_member, create_app
from mamori.intel.taxii.ratelimit import RateLimiter
from mamori.store import open_store

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    store = open_store(tmp_path / "app.db")
    _, key = add_member(store, "bank-a", "Bank A", rate_limit=0)
    with TestClient(create_app(store, TaxiiConfig()), raise_server_exceptions=False) as c:
        yield c, key
    store.close()


def test_basic_and_bearer_auth_and_optional_trailing_slash(client: tuple[TestClient, str]) -> None:
    c, key = client
    basic = "Basic " + base64.b64encode(f"bank-a:{key}".encode()).decode()
    assert c.get("/taxii2/", headers={"Accept": TAXII, "Authorization": basic}).status_code == 200
    assert c.get("/taxii2", headers={"Accept": "application/taxii+json", "Authorization": f"Bearer {key}"}
                 ).status_code == 200
    wrong_user = "Basic " + base64.b64encode(f"bank-b:{key}".encode()).decode()
    resp = c.get("/taxii2/", headers={"Accept": TAXII, "Authorization": wrong_user})
    assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]


def test_method_not_allowed_is_spec_shaped(client: tuple[TestClient, str]) -> None:
    c, key = client
    resp = c.put("/taxii2/", headers={"Accept": TAXII, "Authorization": f"Bearer {key}"})
    assert resp.status_code == 405
    assert resp.json()["http_status"] == "405" and resp.headers["content-type"].startswith("application/taxii+json")


def test_store_failure_is_503_and_unexpected_is_500(client: tuple[TestClient, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    c, key = client
    import mamori.intel.taxii.dependencies as deps

    def broken(*_: object, **__: object) -> None:
        raise StoreError("writing to sqlite:///x failed: disk I/O error")

    monkeypatch.setattr(deps, "authenticate", broken)
    resp = c.get("/taxii2/", headers={"Accept": TAXII, "Authorization": f"Bearer {key}"})
    assert resp.status_code == 503 and resp.json()["error_code"] == "store-error"
    assert "disk" not in resp.json()["description"]  # internals are logged, not sent

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(deps, "authenticate", boom)
    resp = c.get("/taxii2/", headers={"Accept": TAXII, "Authorization": f"Bearer {key}"})
    assert resp.status_code == 500 and resp.json()["http_status"] == "500"


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.acquire("m", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("m", 3)
    assert wait == pytest.approx(20.0)
    now[0] += 20.0
    assert limiter.acquire("m", 3) == 0.0
    assert limiter.acquire("other", 3) == 0.0
    assert all(limiter.acquire("free", 0) == 0.0 for _ in range(100))
