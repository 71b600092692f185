"""Checkpoints are kept per origin.

A Rekor v1 log signs under its configured hostname, which a restarted pod changes: the same
tree size and root can then arrive as two signed notes with two origins. Both are evidence of
what the log said, so a checkpoint is now unique per (log, origin, size, root), not per (log,
size, root). The downgrade keeps the first note of each (log, size, root).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table to change a constraint
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_constraint("uq_checkpoints_log_size_root", type_="unique")
        batch.create_unique_constraint(
            "uq_checkpoints_log_origin_size_root", ["log", "origin", "size", "root"]
        )


def downgrade() -> None:
    op.execute(
        "DELETE FROM checkpoints WHERE id NOT IN "
        "(SELECT MIN(id) FROM checkpoints GROUP BY log, size, root)"
    )
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_constraint("uq_checkpoints_log_origin_size_root", type_="unique")
        batch.create_unique_constraint("uq_checkpoints_log_size_root", ["log", "size", "root"])
