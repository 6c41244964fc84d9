"""Alembic revisions of the mamori store."""
