from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from mamori.errors import StoreError
from mamori.store import Store, StoreConfig, open_store
from mamori.store.tables import AuditRow, Base


def test_open_store_creates_every_table_at_head(store: Store) -> None:
    # Execute
    with store.read() as session:
        names = set(inspect(session.connection()).get_table_names())
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    # Assert
    assert set(Base.metadata.tables) <= names
    assert version == "0002"  # head: 0002_privacy_ledger


def test_migrations_match_the_declared_tables(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_is_idempotent(store_config: StoreConfig) -> None:
    first = open_store(store_config)
    first.audit.append("t", "a", "s")
    first.close()
    second = open_store(store_config)
    assert second.audit.count() == 1
    second.close()


def test_default_config_is_a_sqlite_file() -> None:
    assert StoreConfig().url.startswith("sqlite:///")


def test_bare_path_is_a_sqlite_file(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "sub" / "x.db"))
    assert store.dialect == "sqlite"
    assert (tmp_path / "sub" / "x.db").exists()
    store.close()


def test_bad_url_raises_store_error() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("nodriver://::::")


def test_unreachable_postgres_raises_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open or migrate"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_sqlalchemy_errors_are_translated(store: Store) -> None:
    with pytest.raises(StoreError, match="writing to"), store.write() as session:
        session.add(AuditRow(id=1, at="x", actor="a", action="b", subject="c", details="{}", prev_hash="0",
                             hash="h"))
        session.add(AuditRow(id=1, at="x", actor="a", action="b", subject="c", details="{}", prev_hash="0",
                             hash="h2"))
        session.flush()
    with store.read() as session:
        assert session.scalars(select(AuditRow)).all() == []


def test_bad_schema_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="schema_name"):
        StoreConfig(schema_name="Robert'); DROP")


def test_database_from_a_newer_release_is_refused(store_config: StoreConfig) -> None:
    store = open_store(store_config)
    with store.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match="newer mamori"):
        open_store(store_config)
