"""The database handle: engine, sessions, migrations, and translation of SQLAlchemy errors."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mamori.errors import StoreError

if TYPE_CHECKING:
    from mamori.store.audit import AuditLog
    from mamori.store.registry import ModelRegistry

__all__ = ["DEFAULT_URL", "Store", "StoreConfig", "open_store", "utc_now"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///mamori.db"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_LOCK = 7_270_001  # PostgreSQL advisory-lock key held while migrating


def utc_now() -> str:
    """The current UTC time as a fixed-width RFC 3339 string with microseconds (sorts lexically).

    Returns
    -------
    str
        For example ``"2026-11-26T04:03:00.123456Z"``.
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_url(url: str) -> str:
    """Turn what a user types into a SQLAlchemy URL.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL, ``postgresql://...`` (mapped to the psycopg 3 driver) or a bare file path
        (taken as a SQLite file).

    Returns
    -------
    str
        A URL SQLAlchemy can open.
    """
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class StoreConfig(BaseModel):
    """Where the store lives.

    Parameters
    ----------
    url : str, default="sqlite:///mamori.db"
        SQLAlchemy URL, ``postgresql://user@host/db`` or a SQLite file path. The default is a SQLite file
        ``mamori.db`` in the working directory.
    schema_name : str or None, default=None
        PostgreSQL only: the schema to keep mamori's tables in (created if missing). Lets several stores
        (tests, tenants) share one database.
    echo : bool, default=False
        Log every SQL statement (debugging).
    pool_size : int, default=5
        Connections kept open (PostgreSQL).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = DEFAULT_URL
    schema_name: str | None = None
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEMA_RE.match(value):
            raise ValueError(f"schema_name must match {_SCHEMA_RE.pattern} (lower-case identifier), got {value!r}")
        return value


class Store:
    """An open database: sessions for reading and writing, the audit log and the model registry.

    Use :func:`open_store` to create one; it runs the migrations to head first.

    Parameters
    ----------
    config : StoreConfig
        Where the database is.
    engine : sqlalchemy.engine.Engine
        The engine :func:`open_store` built.
    """

    def __init__(self, config: StoreConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._audit: AuditLog | None = None
        self._models: ModelRegistry | None = None

    @property
    def dialect(self) -> str:
        """The database dialect name, ``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def audit(self) -> AuditLog:
        """The hash-chained audit log of this store."""
        if self._audit is None:
            from mamori.store.audit import AuditLog

            self._audit = AuditLog(self)
        return self._audit

    @property
    def models(self) -> ModelRegistry:
        """The model registry of this store."""
        if self._models is None:
            from mamori.store.registry import ModelRegistry

            self._models = ModelRegistry(self)
        return self._models

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; its transaction is rolled back when the block ends.

        Yields
        ------
        sqlalchemy.orm.Session

        Raises
        ------
        StoreError
            When the database cannot be read.
        """
        try:
            with self._sessions() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"reading {self.url} failed: {exc.__class__.__name__}: {_short(exc)}") from exc

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for writing; committed when the block ends without error, rolled back otherwise.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE`` so that read-then-write sequences (the
        audit chain, version checks) cannot interleave. When the block returns, the data is durable.

        Yields
        ------
        sqlalchemy.orm.Session

        Raises
        ------
        StoreError
            When the database cannot be written; nothing of the block is kept.
        """
        try:
            with self._sessions() as session:
                session.connection(execution_options={"mamori_write": True})
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except SQLAlchemyError as exc:
            raise StoreError(f"writing to {self.url} failed: {exc.__class__.__name__}: {_short(exc)}") from exc

    def lock(self, session: Session, key: int) -> None:
        """Serialise writers on ``key`` until the session's transaction ends (PostgreSQL advisory lock).

        SQLite needs nothing: :meth:`write` already holds the database's write lock.

        Parameters
        ----------
        session : sqlalchemy.orm.Session
            A session from :meth:`write`.
        key : int
            Any 63-bit integer naming the resource.
        """
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"


def _short(exc: BaseException) -> str:
    """First line of an exception, without SQLAlchemy's background link."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]


def _install_sqlite_hooks(engine: Engine) -> None:
    """WAL, full sync, foreign keys, busy timeout; BEGIN IMMEDIATE for write sessions."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("mamori_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _install_pg_schema(engine: Engine, schema: str) -> None:
    """Put every connection's search_path on ``schema``."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f'SET search_path TO "{schema}"')
        cur.close()
        dbapi_conn.commit()


def _migrate(engine: Engine, schema: str | None) -> None:
    """Run the packaged Alembic migrations to head."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("mamori.store") / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            if schema:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str | os.PathLike[str] | StoreConfig | None = None, *, must_exist: bool = False) -> Store:
    """Open (and create or migrate to the newest schema) the mamori database.

    Parameters
    ----------
    url : str, path, StoreConfig or None, default=None
        A URL (``sqlite:///path.db``, ``postgresql://user@host/db``, or a bare SQLite file path), a full
        :class:`StoreConfig`, or None for the default SQLite file ``mamori.db`` in the working directory.
    must_exist : bool, default=False
        Refuse a SQLite file that does not exist instead of creating it: for commands that only read or check a
        store (``mamori audit verify`` must not report a mistyped path as an intact, empty audit log).

    Returns
    -------
    Store
        The open store; close it with :meth:`Store.close` or use it as a context manager.

    Raises
    ------
    StoreError
        When the URL is malformed, the database is unreachable, the migrations fail, or ``must_exist`` is set and
        the SQLite file is missing.

    Examples
    --------
    >>> store = open_store("sqlite:///:memory:")  # doctest: +SKIP
    >>> store.audit.append("alice", "model.register", "model:fedavg", {"round": 1})  # doctest: +SKIP
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    config = url if isinstance(url, StoreConfig) else StoreConfig(url=url or DEFAULT_URL)
    raw = normalize_url(config.url)
    try:
        parsed = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"open_store: {config.url!r} is not a database URL; expected e.g. "
                         "'sqlite:///mamori.db' or 'postgresql://user@host:5432/db'") from exc
    kwargs: dict[str, Any] = {"echo": config.echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database).expanduser()
            if must_exist and not path.is_file():
                raise StoreError(f"open_store: no database at '{path}' ({config.url}); check the --db URL or path "
                                 "(this command reads a store and does not create one).")
            path.parent.mkdir(parents=True, exist_ok=True)
        else:  # one shared in-memory database for every session
            from sqlalchemy.pool import StaticPool

            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        kwargs.update(pool_size=config.pool_size, max_overflow=10, pool_pre_ping=True)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"open_store: cannot build an engine for {parsed.render_as_string(hide_password=True)}: "
                         f"{exc}") from exc
    if engine.dialect.name == "sqlite":
        _install_sqlite_hooks(engine)
    elif config.schema_name:
        _install_pg_schema(engine, config.schema_name)
    from alembic.util.exc import CommandError

    try:
        _migrate(engine, config.schema_name)
    except CommandError as exc:
        engine.dispose()
        raise StoreError(f"open_store: the schema of {engine.url.render_as_string(hide_password=True)} cannot be "
                         f"migrated ({exc}); was it written by a newer mamori?") from exc
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"open_store: cannot open or migrate {engine.url.render_as_string(hide_password=True)}: "
                         f"{_short(exc)}. Check that the server is running and the URL is right.") from exc
    logger.info("store open at %s", engine.url.render_as_string(hide_password=True))
    return Store(config, engine)
