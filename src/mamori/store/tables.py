"""The tables mamori keeps: audit log, model registry, and the TAXII/STIX tables of ``mamori.intel``.

Every schema change goes through an Alembic revision in ``mamori/store/migrations/versions``;
these declarations must match the head revision (a test checks it).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditRow",
    "Base",
    "CollectionRow",
    "MemberRow",
    "ModelBlobRow",
    "ModelRow",
    "PrivacyLedgerRow",
    "StatusRow",
    "StixObjectRow",
]

# SQLite only auto-increments ``INTEGER PRIMARY KEY``; PostgreSQL gets a BIGINT identity.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every mamori table."""


class AuditRow(Base):
    """One entry of the hash-chained audit log."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    subject: Mapped[str] = mapped_column(String(400), nullable=False)
    details: Mapped[str] = mapped_column(Text, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class ModelBlobRow(Base):
    """Content-addressed model weights (one row per distinct sha256)."""

    __tablename__ = "model_blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ModelRow(Base):
    """A registered model checkpoint: name, version (federated round), weights hash, metadata."""

    __tablename__ = "model_registry"
    __table_args__ = (Index("ix_model_registry_name_version", "name", "version"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(ForeignKey("model_blob.sha256"), nullable=False, index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    fmt: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[str] = mapped_column(String(32), nullable=False)
    meta: Mapped[str] = mapped_column(Text, nullable=False)


class MemberRow(Base):
    """A consortium member of the TAXII server: API key hash, organisation, permissions."""

    __tablename__ = "intel_member"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    organization: Mapped[str] = mapped_column(String(200), nullable=False)
    identity_id: Mapped[str] = mapped_column(String(100), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    can_read: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of collection ids or ["*"]
    can_write: Mapped[str] = mapped_column(Text, nullable=False)
    rate_limit: Mapped[int] = mapped_column(Integer, nullable=False)  # requests per minute, 0 = unlimited
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[str] = mapped_column(String(32), nullable=False)


class CollectionRow(Base):
    """A TAXII collection."""

    __tablename__ = "intel_collection"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_root: Mapped[str] = mapped_column(String(100), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    alias: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[str] = mapped_column(String(32), nullable=False)


class StixObjectRow(Base):
    """One version of one STIX object in one collection."""

    __tablename__ = "intel_object"
    __table_args__ = (
        UniqueConstraint("collection_id", "object_id", "version", name="uq_intel_object_version"),
        Index("ix_intel_object_coll_seq", "collection_id", "seq"),
        Index("ix_intel_object_coll_obj", "collection_id", "object_id"),
    )

    seq: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("intel_collection.id"), nullable=False)
    object_id: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    spec_version: Mapped[str] = mapped_column(String(10), nullable=False)
    version: Mapped[str] = mapped_column(String(32), nullable=False)
    date_added: Mapped[str] = mapped_column(String(32), nullable=False)
    tlp: Mapped[str] = mapped_column(String(20), nullable=False)
    author_member: Mapped[str] = mapped_column(String(200), nullable=False)
    author_org: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)


class StatusRow(Base):
    """The status resource of one TAXII add-objects request."""

    __tablename__ = "intel_status"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_root: Mapped[str] = mapped_column(String(100), nullable=False)
    member: Mapped[str] = mapped_column(String(200), nullable=False)
    request_timestamp: Mapped[str] = mapped_column(String(32), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # the status resource as JSON


class PrivacyLedgerRow(Base):
    """Privacy budget spent by one member up to one round of one federated run (``mamori.store.ledger``)."""

    __tablename__ = "privacy_ledger"
    __table_args__ = (
        UniqueConstraint("member", "run_id", "server_round", "mechanism", name="uq_privacy_ledger_round"),
        Index("ix_privacy_ledger_member", "member"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    member: Mapped[str] = mapped_column(String(200), nullable=False)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    server_round: Mapped[int] = mapped_column(Integer, nullable=False)
    unit: Mapped[str] = mapped_column(String(20), nullable=False)  # "customer" or "member"
    mechanism: Mapped[str] = mapped_column(String(100), nullable=False)
    epsilon: Mapped[float] = mapped_column(Float, nullable=False)  # cumulative within the run
    delta: Mapped[float] = mapped_column(Float, nullable=False)
    noise_multiplier: Mapped[float] = mapped_column(Float, nullable=False)
    steps: Mapped[int] = mapped_column(Integer, nullable=False)
    recorded_at: Mapped[str] = mapped_column(String(32), nullable=False)
