"""Canonical events: the schema, readers of real log formats, writers, and the quarantine."""

from mamori.events.formats import (
    DURATION_PRECISION,
    FORMAT_COLUMNS,
    FORMATS,
    READ_FORMATS,
    TIMESTAMP_PRECISION,
    project_to_format,
)
from mamori.events.schema import (
    AUTH_ACTIONS,
    EVENT_SCHEMA,
    FEATURE_SOURCE_COLUMNS,
    LABEL_COLUMNS,
    conform,
    empty_events,
)
from mamori.events.writers import join_on_request_id, render_lines, write_events

__all__ = [
    "AUTH_ACTIONS",
    "DURATION_PRECISION",
    "EVENT_SCHEMA",
    "FEATURE_SOURCE_COLUMNS",
    "FORMATS",
    "FORMAT_COLUMNS",
    "LABEL_COLUMNS",
    "READ_FORMATS",
    "TIMESTAMP_PRECISION",
    "conform",
    "empty_events",
    "join_on_request_id",
    "project_to_format",
    "render_lines",
    "write_events",
]
