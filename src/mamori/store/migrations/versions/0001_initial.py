"""Initial schema: audit log, model registry, TAXII members/collections/objects/status.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "audit_log",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "model_blob",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "model_registry",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("model_blob.sha256"), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("fmt", sa.String(20), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
    )
    op.create_index("ix_model_registry_name_version", "model_registry", ["name", "version"])
    op.create_index("ix_model_registry_sha256", "model_registry", ["sha256"])
    op.create_table(
        "intel_member",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("identity_id", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("can_read", sa.Text(), nullable=False),
        sa.Column("can_write", sa.Text(), nullable=False),
        sa.Column("rate_limit", sa.Integer(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "intel_collection",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("api_root", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("alias", sa.String(100), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "intel_object",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("collection_id", sa.String(64), sa.ForeignKey("intel_collection.id"), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("spec_version", sa.String(10), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("date_added", sa.String(32), nullable=False),
        sa.Column("tlp", sa.String(20), nullable=False),
        sa.Column("author_member", sa.String(200), nullable=False),
        sa.Column("author_org", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("collection_id", "object_id", "version", name="uq_intel_object_version"),
    )
    op.create_index("ix_intel_object_coll_seq", "intel_object", ["collection_id", "seq"])
    op.create_index("ix_intel_object_coll_obj", "intel_object", ["collection_id", "object_id"])
    op.create_table(
        "intel_status",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("api_root", sa.String(100), nullable=False),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("request_timestamp", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table of the first release."""
    for name in ("intel_status", "intel_object", "intel_collection", "intel_member", "model_registry", "model_blob",
                 "audit_log"):
        op.drop_table(name)
