"""Outbox claims and the write probe.

An outbox row is claimed (by whom, until when) before it is posted, so that no two
processes deliver it: a claim that expires (its holder died) lets the row be delivered
again, with the same message id. ``write_probes`` holds one row per monitor process, written
by the readiness check to prove that the database takes writes (a full disk refuses them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("claimed_until", WHEN, nullable=True))
    op.create_table(
        "write_probes",
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_write_probes"),
    )


def downgrade() -> None:
    op.drop_table("write_probes")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
