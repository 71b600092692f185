"""index_all partitioned by log and index range (PostgreSQL).

``index_all`` becomes a table partitioned by RANGE (log_id, idx), one partition per log and
range of 1,048,576 indexes (``monitor.storage.partitions``), named ``index_all_<log>_<n>``:
a batch then writes into the small indexes of one partition instead of indexes as large as
the whole table, and retention drops a partition whose rows have all expired. The monitor
creates partitions as rows arrive.

The rows are copied into the new table (one partition per range that holds rows), then the
secondary indexes are built, once per partition; it runs in one transaction, while the
monitor is stopped, and needs room for a second copy of the table until it ends. Downgrade
copies them back into one table. SQLite has no partitioning: its schema is unchanged.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
CHUNK_BITS = 20  # as monitor.storage.partitions (a migration keeps its own copy)
INDEXES = {
    "ix_index_all_san": ["san", "log_id", "idx"],
    "ix_index_all_issuer": ["issuer", "log_id", "idx"],
    "ix_index_all_key_hash": ["key_hash", "log_id", "idx"],
    "ix_index_all_digest_hash": ["digest_hash", "log_id", "idx"],
    "ix_index_all_time": ["time"],
}
COLUMNS = (
    "log_id",
    "idx",
    "time",
    "kind",
    "san",
    "issuer",
    "key_fingerprint",
    "digest",
    "key_hash",
    "digest_hash",
)
FK = "fk_index_all_log_id_index_all_logs"


def _set_aside() -> None:
    """Rename ``index_all`` to ``index_all_old``, freeing its index and constraint names."""
    for name in INDEXES:
        op.drop_index(name, table_name="index_all")
    op.rename_table("index_all", "index_all_old")
    op.execute("ALTER TABLE index_all_old RENAME CONSTRAINT pk_index_all TO pk_index_all_old")
    op.execute(f"ALTER TABLE index_all_old RENAME CONSTRAINT {FK} TO {FK}_old")


def _create(**partitioning: str) -> None:
    op.create_table(
        "index_all",
        sa.Column("log_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("san", VALUE, nullable=True),
        sa.Column("issuer", VALUE, nullable=True),
        sa.Column("key_fingerprint", VALUE, nullable=True),
        sa.Column("digest", VALUE, nullable=True),
        sa.Column("key_hash", sa.BigInteger(), nullable=True),
        sa.Column("digest_hash", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["log_id"], ["index_all_logs.id"], name=FK),
        sa.PrimaryKeyConstraint("log_id", "idx", name="pk_index_all"),
        **partitioning,  # type: ignore[arg-type]
    )


def _copy_and_index() -> None:
    """Copy ``index_all_old`` into ``index_all`` in key order, then build the indexes (a
    sort each, not a random insert per row), then drop the old table."""
    columns = ", ".join(COLUMNS)
    op.execute(
        f"INSERT INTO index_all ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM index_all_old ORDER BY log_id, idx"
    )
    op.drop_table("index_all_old")
    for name, cols in INDEXES.items():
        op.create_index(name, "index_all", cols)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside()
    _create(postgresql_partition_by="RANGE (log_id, idx)")
    chunks = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT log_id, idx >> {CHUNK_BITS} FROM index_all_old")  # noqa: S608
    )
    for log_id, chunk in chunks.all():
        lo, hi = chunk << CHUNK_BITS, (chunk + 1) << CHUNK_BITS
        op.execute(
            f"CREATE TABLE index_all_{log_id}_{chunk} PARTITION OF index_all "
            f"FOR VALUES FROM ({log_id}, {lo}) TO ({log_id}, {hi})"
        )
    _copy_and_index()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside()
    _create()
    _copy_and_index()  # dropping the partitioned table drops its partitions
