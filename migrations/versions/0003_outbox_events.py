"""Outbox events.

An outbox row is now a trigger (the finding) or a resolve (the finding cleared), so that a
sink that opened an incident for a finding also hears when it ends; rows are unique per
(finding, sink, event). Pending rows of a sink are read in creation order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table to change a constraint
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("event", sa.String(16), server_default="trigger", nullable=False)
        )
        batch.drop_constraint("uq_outbox_dedup_key_sink", type_="unique")
        batch.create_unique_constraint(
            "uq_outbox_dedup_key_sink_event", ["dedup_key", "sink", "event"]
        )
    op.create_index("ix_outbox_pending", "outbox", ["sink", "delivered_at", "dead_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.execute("DELETE FROM outbox WHERE event <> 'trigger'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("uq_outbox_dedup_key_sink_event", type_="unique")
        batch.create_unique_constraint("uq_outbox_dedup_key_sink", ["dedup_key", "sink"])
        batch.drop_column("event")
