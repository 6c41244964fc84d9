"""Privacy ledger: per member and round, the differential-privacy budget spent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the ``privacy_ledger`` table."""
    op.create_table(
        "privacy_ledger",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("server_round", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("mechanism", sa.String(100), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("noise_multiplier", sa.Float(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("member", "run_id", "server_round", "mechanism", name="uq_privacy_ledger_round"),
    )
    op.create_index("ix_privacy_ledger_member", "privacy_ledger", ["member"])


def downgrade() -> None:
    """Drop the ``privacy_ledger`` table."""
    op.drop_index("ix_privacy_ledger_member", table_name="privacy_ledger")
    op.drop_table("privacy_ledger")
