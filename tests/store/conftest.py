from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mamori.store import Store, StoreConfig, open_store


def _pg_url() -> str | None:
    return os.environ.get("MAMORI_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreConfig]:
    """A fresh, isolated database: a SQLite file, or a throw-away schema in the shared PostgreSQL."""
    if request.param == "sqlite":
        yield StoreConfig(url=str(tmp_path / "store.db"))
        return
    url = _pg_url()
    if not url:
        pytest.skip("MAMORI_TEST_POSTGRES_URL is not set; PostgreSQL tests run in CI (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield StoreConfig(url=url, schema_name=schema)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def store(store_config: StoreConfig) -> Iterator[Store]:
    s = open_store(store_config)
    yield s
    s.close()
