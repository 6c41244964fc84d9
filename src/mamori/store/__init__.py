"""Persistence: SQLAlchemy engine and sessions, Alembic migrations, the audit log and the model registry.

SQLite file by default, PostgreSQL with a URL. Open with :func:`open_store`; it migrates to the newest
schema. No SQLAlchemy exception escapes: every failure is a :class:`mamori.errors.StoreError`.
"""

from mamori.store.audit import GENESIS_HASH, AuditEntry, AuditLog, AuditReport
from mamori.store.ledger import LedgerEntry, PrivacyLedger, PrivacyTotal
from mamori.store.registry import ModelCheckpoint, ModelRecord, ModelRegistry, arrays_to_bytes, bytes_to_arrays
from mamori.store.store import DEFAULT_URL, Store, StoreConfig, open_store, utc_now

__all__ = [
    "DEFAULT_URL",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLog",
    "AuditReport",
    "LedgerEntry",
    "ModelCheckpoint",
    "ModelRecord",
    "ModelRegistry",
    "PrivacyLedger",
    "PrivacyTotal",
    "Store",
    "StoreConfig",
    "arrays_to_bytes",
    "bytes_to_arrays",
    "open_store",
    "utc_now",
]
