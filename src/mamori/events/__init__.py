"""Canonical events: the schema, readers of real log formats, writers, and the quarantine."""

from mamori.events.csic import read_csic, read_csic_files
from mamori.events.csv_mapped import CsvMappingConfig, load_mapping, read_csv_mapped
from mamori.events.detect import detect_format
from mamori.events.feedback import (
    VERDICT_LABEL_COLUMNS,
    VERDICT_LABELS_FILE,
    VerdictLabel,
    apply_verdict_labels,
    read_verdict_labels,
    verdict_labels_csv,
)
from mamori.events.formats import (
    DURATION_PRECISION,
    FORMAT_COLUMNS,
    FORMATS,
    READ_FORMATS,
    TIMESTAMP_PRECISION,
    project_to_format,
)
from mamori.events.quarantine import REASONS, Quarantine
from mamori.events.readers import (
    DEFAULT_BATCH_LINES,
    ReadResult,
    ReadSummary,
    iter_event_batches,
    parse_lines,
    read_event_parquet,
    read_events,
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
    "CsvMappingConfig",
    "DEFAULT_BATCH_LINES",
    "DURATION_PRECISION",
    "EVENT_SCHEMA",
    "FEATURE_SOURCE_COLUMNS",
    "FORMATS",
    "FORMAT_COLUMNS",
    "LABEL_COLUMNS",
    "Quarantine",
    "READ_FORMATS",
    "REASONS",
    "ReadResult",
    "ReadSummary",
    "TIMESTAMP_PRECISION",
    "VERDICT_LABELS_FILE",
    "VERDICT_LABEL_COLUMNS",
    "VerdictLabel",
    "apply_verdict_labels",
    "conform",
    "detect_format",
    "empty_events",
    "iter_event_batches",
    "join_on_request_id",
    "load_mapping",
    "parse_lines",
    "project_to_format",
    "read_csic",
    "read_csic_files",
    "read_csv_mapped",
    "read_event_parquet",
    "read_events",
    "read_verdict_labels",
    "render_lines",
    "verdict_labels_csv",
    "write_events",
]
