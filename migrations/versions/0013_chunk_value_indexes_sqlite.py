"""Value indexes local to chunks of the log (SQLite).

On SQLite the indexes of ``index_all`` on SAN, key hash and digest hash become (log_id,
idx >> 20, value, idx), and that of ``entry_identities`` on (field, value) becomes (log,
idx >> 20, field, value, idx) (``monitor.storage.chunks``): a batch then writes into the
newest chunk's part of each index instead of pages scattered over indexes as large as the
table. The old indexes are dropped and the new ones built, each a sort of its table
(minutes per 10,000,000 rows, while the monitor is stopped); no row changes.
Downgrade builds the old ones again. PostgreSQL keeps its indexes, one per partition of
``index_all`` (revisions 0011 and 0012): nothing changes there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = sa.text("(idx >> 20)")  # as monitor.storage.chunks (a migration keeps its own copy)
# table: (old name, old columns, new name, new columns)
INDEXES = [
    (
        "index_all",
        f"ix_index_all_{c}",
        [c, "log_id", "idx"],
        f"ix_index_all_chunk_{c}",
        ["log_id", CHUNK, c, "idx"],
    )
    for c in ("san", "key_hash", "digest_hash")
] + [
    (
        "entry_identities",
        "ix_entry_identities_lookup",
        ["field", "value", "log", "idx"],
        "ix_entry_identities_chunk_lookup",
        ["log", CHUNK, "field", "value", "idx"],
    )
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, old, _, new, columns in INDEXES:
        op.drop_index(old, table_name=table)
        op.create_index(new, table, columns)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, old, columns, new, _ in INDEXES:
        op.drop_index(new, table_name=table)
        op.create_index(old, table, columns)
