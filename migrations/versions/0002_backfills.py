"""Backfills.

Where each backfill (a range of a log processed apart from its tailing cursor) stands, so
that it resumes after a crash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
LOG = sa.String(255)


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column("log", LOG, nullable=False),
        sa.Column("start_idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("end_idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=True),
        sa.Column("compact_size", sa.BigInteger(), nullable=False),
        sa.Column("compact_hashes", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["log"], ["logs.name"], name="fk_backfills_log_logs"),
        sa.PrimaryKeyConstraint("log", "start_idx", "end_idx", name="pk_backfills"),
    )


def downgrade() -> None:
    op.drop_table("backfills")
