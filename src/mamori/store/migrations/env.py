"""Alembic environment: runs on the connection that :func:`mamori.store.open_store` hands over."""

from __future__ import annotations

from alembic import context

from mamori.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - mamori always passes its own connection
    raise RuntimeError("mamori migrations run through mamori.store.open_store(), which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
