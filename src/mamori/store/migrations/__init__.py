"""Alembic migrations of the mamori store (packaged so they run from an installed wheel)."""
