"""High availability: per-log leases, the replicas that hold them, sticky message ids.

``log_leases``: one row per log, the replica process leading it (``holder``), the lease's
``epoch`` (raised whenever it changes hands, so that a batch started under an older lease
is refused at commit), since when it holds it, and until when. ``replicas``: each running
replica's heartbeat, so that leases are spread over live replicas and a dead replica's
outbox claims are free at once. ``outbox.message_id``: the ``webhook-id`` a row was first
claimed under, so that whichever replica sends it again uses the same one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "log_leases",
        sa.Column("log", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("replica", sa.String(255), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("since", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("log", name="pk_log_leases"),
    )
    op.create_table(
        "replicas",
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("replica", sa.String(255), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_replicas"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("message_id", sa.String(64), nullable=True))
    # a message sent again is read back by its id
    op.create_index("ix_outbox_message", "outbox", ["sink", "message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("message_id")
    op.drop_table("replicas")
    op.drop_table("log_leases")
