"""Canonical events: the schema, readers of real log formats, writers, and the quarantine."""

from mamori.events.schema import (
    AUTH_ACTIONS,
    EVENT_SCHEMA,
    FEATURE_SOURCE_COLUMNS,
    LABEL_COLUMNS,
    conform,
    empty_events,
)

__all__ = [
    "AUTH_ACTIONS",
    "EVENT_SCHEMA",
    "FEATURE_SOURCE_COLUMNS",
    "LABEL_COLUMNS",
    "conform",
    "empty_events",
]
