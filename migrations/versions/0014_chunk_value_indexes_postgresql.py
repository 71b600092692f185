"""Value indexes local to chunks of each partition of index_all (PostgreSQL).

On PostgreSQL the indexes of ``index_all`` on SAN, key hash and digest hash become
(idx >> 20, value, idx) in each partition (``monitor.storage.chunks``,
``monitor.storage.partition_query``): a batch then writes into the newest chunk's part of
each instead of pages scattered over indexes as large as the partition (16,777,216 rows).
The new indexes are built on the partitioned table, one per partition (a sort of each,
minutes per 10,000,000 rows, while the monitor is stopped), and the old ones dropped; no row
changes. Downgrade builds the old ones again. SQLite's indexes are chunked already (0013):
nothing changes there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = sa.text("(idx >> 20)")  # as monitor.storage.chunks (a migration keeps its own copy)
# (old name, old columns, new name, new columns)
INDEXES = [
    (f"ix_index_all_{c}", [c, "log_id", "idx"], f"ix_index_all_chunk_{c}", [CHUNK, c, "idx"])
    for c in ("san", "key_hash", "digest_hash")
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for old, _, new, columns in INDEXES:
        op.create_index(new, "index_all", columns)
        op.drop_index(old, table_name="index_all")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for old, columns, new, _ in INDEXES:
        op.create_index(old, "index_all", columns)
        op.drop_index(new, table_name="index_all")
