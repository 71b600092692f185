"""index_all partitions of 16,777,216 indexes instead of 1,048,576 (PostgreSQL).

A query that cannot prune partitions (by SAN, key or digest, across every log) is planned
over each of them, and PostgreSQL 15's planning grows faster than the count: at 1,000
partitions (about a year of the public Rekor v2 log with 1,048,576 indexes a partition)
planning alone took seconds and each such query held 7,000 locks. Ranges 16 times wider keep
a year under 50 partitions a log.

The rows are copied into a new table partitioned by the wider ranges (the old partitions
are renamed ``index_all_old_<log>_<n>`` meanwhile, and dropped with the old table), then the
secondary indexes are built, once per partition; as 0011, it runs in one transaction, while
the monitor is stopped, and needs room for a second copy of the table until it ends.
It locks every partition, old and new, with its indexes, until it ends: with more than
about 600 partitions before or after, PostgreSQL's default max_locks_per_transaction (64)
is too small, and it stops at once saying what to set. Downgrade copies the rows back into
partitions of 1,048,576. SQLite's schema is unchanged.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
OLD_BITS, NEW_BITS = 20, 24  # monitor.storage.partitions.CHUNK_BITS before and after
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
    """Rename ``index_all`` and its partitions (``index_all_old``, ``index_all_old_<log>_<n>``,
    primary key indexes too), freeing their names for the new ones."""
    for name in INDEXES:
        op.drop_index(name, table_name="index_all")
    parts = op.get_bind().execute(
        sa.text(
            "SELECT c.relname, x.indexrelid::regclass::text FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_index x ON x.indrelid = c.oid AND x.indisprimary "
            "WHERE i.inhparent = 'index_all'::regclass"
        )
    )
    for name, pkey in parts.all():
        old = name.replace("index_all_", "index_all_old_", 1)
        op.execute(f"ALTER TABLE {name} RENAME TO {old}")
        op.execute(f"ALTER INDEX {pkey} RENAME TO {old}_pkey")
    op.rename_table("index_all", "index_all_old")
    op.execute("ALTER TABLE index_all_old RENAME CONSTRAINT pk_index_all TO pk_index_all_old")
    op.execute(f"ALTER TABLE index_all_old RENAME CONSTRAINT {FK} TO {FK}_old")


LOCKS_A_PARTITION = 10  # the table, its toast table and index, primary key and 5 indexes


def _check_lock_room(old: int, new: int) -> None:
    """Fail before any work unless the server's lock table can hold this transaction's
    locks: it locks every partition, old and new, with its indexes, to its end. The table
    is shared by all sessions: max_locks_per_transaction * (max_connections +
    max_prepared_transactions) slots; at the defaults (64, 100) about 600 partitions."""
    settings = op.get_bind().execute(
        sa.text(
            "SELECT current_setting('max_locks_per_transaction')::int, "
            "current_setting('max_connections')::int "
            "+ current_setting('max_prepared_transactions')::int"
        )
    )
    per_tx, sessions = settings.one()
    need = LOCKS_A_PARTITION * (old + new) + 200
    if need > per_tx * sessions:
        raise RuntimeError(
            f"index_all has {old} partitions: repartitioning them in one transaction needs "
            f"about {need} locks, more than the server's lock table holds "
            f"({per_tx} max_locks_per_transaction x {sessions} sessions). Set "
            f"max_locks_per_transaction to at least {-(-need // sessions)} (a restart), "
            "then upgrade again"
        )


def _repartition(bits: int) -> None:
    """A new ``index_all`` partitioned by ranges of ``2**bits`` indexes (one partition per
    range that holds rows), the rows copied in key order, then its indexes built (a sort
    each, not a random insert per row); the old table goes."""
    chunks = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT log_id, idx >> {bits} FROM index_all")  # noqa: S608
    )
    wanted = chunks.all()
    old = op.get_bind().execute(
        sa.text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'index_all'::regclass")
    )
    _check_lock_room(old.scalar_one(), len(wanted))
    _set_aside()
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
        postgresql_partition_by="RANGE (log_id, idx)",
    )
    for log_id, chunk in wanted:
        lo, hi = chunk << bits, (chunk + 1) << bits
        op.execute(
            f"CREATE TABLE index_all_{log_id}_{chunk} PARTITION OF index_all "
            f"FOR VALUES FROM ({log_id}, {lo}) TO ({log_id}, {hi})"
        )
    columns = ", ".join(COLUMNS)
    op.execute(
        f"INSERT INTO index_all ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM index_all_old ORDER BY log_id, idx"
    )
    op.drop_table("index_all_old")  # and its partitions
    for name, cols in INDEXES.items():
        op.create_index(name, "index_all", cols)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _repartition(NEW_BITS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _repartition(OLD_BITS)
