"""Compact index_all.

Every index entry of ``index_all`` carried the log's name (up to 255 characters) and the key
fingerprint and digest indexes the whole value (70 characters or more). Those indexes take
random keys, so each batch rewrote a page per row in each of them: the table and its indexes
were most of the work of storing a batch. Now a log is a small number (``index_all_logs``),
and key fingerprints and digests are indexed by a 64-bit hash of the value (``key_hash``,
``digest_hash``, as ``monitor.storage.models.value_hash`` computes them), the whole value kept
beside it to compare.

The rows are copied into the new table in batches of 10,000, in (log, index) order, the
hashes computed on the way; logs are numbered in name order. It runs in one transaction,
while the monitor is stopped, and needs room for a second copy of the table until it ends.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG = sa.String(255)
VALUE = sa.String(400).with_variant(sa.String(400, collation="C"), "postgresql")
BATCH = 10_000
OLD_INDEXES = {
    "ix_index_all_san": ["san", "log", "idx"],
    "ix_index_all_issuer": ["issuer", "log", "idx"],
    "ix_index_all_key_fingerprint": ["key_fingerprint", "log", "idx"],
    "ix_index_all_digest": ["digest", "log", "idx"],
    "ix_index_all_time": ["time"],
}
NEW_INDEXES = {
    "ix_index_all_san": ["san", "log_id", "idx"],
    "ix_index_all_issuer": ["issuer", "log_id", "idx"],
    "ix_index_all_key_hash": ["key_hash", "log_id", "idx"],
    "ix_index_all_digest_hash": ["digest_hash", "log_id", "idx"],
    "ix_index_all_time": ["time"],
}
COMMON = ("idx", "time", "kind", "san", "issuer", "key_fingerprint", "digest")


def _hash(value: str | None) -> int | None:
    # as value_hash in the models (a migration keeps its own copy: the models move on);
    # stored values are already cleaned and capped
    if value is None:
        return None
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big", signed=True)


def _set_aside(current: str, indexes: dict[str, list[str]]) -> None:
    """Rename the table ``current`` to ``<current>_old``, freeing its index and key names."""
    for name in indexes:
        op.drop_index(name, table_name=current)
    op.rename_table(current, f"{current}_old")
    if op.get_bind().dialect.name == "postgresql":  # constraint names are per schema there
        op.execute(f"ALTER TABLE {current}_old RENAME CONSTRAINT pk_{current} TO pk_{current}_old")


def _common_columns() -> list[sa.Column[object]]:
    """The columns both layouts share (new objects each time: a column belongs to one table)."""
    return [
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("san", VALUE, nullable=True),
        sa.Column("issuer", VALUE, nullable=True),
        sa.Column("key_fingerprint", VALUE, nullable=True),
        sa.Column("digest", VALUE, nullable=True),
    ]


def _create_indexes(indexes: dict[str, list[str]]) -> None:
    for name, columns in indexes.items():
        op.create_index(name, "index_all", columns)


def upgrade() -> None:
    _set_aside("index_all", OLD_INDEXES)
    op.create_table(
        "index_all_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("log", LOG, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_index_all_logs"),
        sa.UniqueConstraint("log", name="uq_index_all_logs_log"),
    )
    op.create_table(
        "index_all",
        sa.Column("log_id", sa.Integer(), autoincrement=False, nullable=False),
        *_common_columns(),
        sa.Column("key_hash", sa.BigInteger(), nullable=True),
        sa.Column("digest_hash", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["log_id"], ["index_all_logs.id"], name="fk_index_all_log_id_index_all_logs"
        ),
        sa.PrimaryKeyConstraint("log_id", "idx", name="pk_index_all"),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    bind.execute(sa.text("INSERT INTO index_all_logs (log) SELECT DISTINCT log FROM index_all_old"))
    ids: dict[str, int] = dict(bind.execute(sa.text("SELECT log, id FROM index_all_logs")).all())
    new = sa.table(
        "index_all",
        *(sa.column(c) for c in ("log_id", *COMMON, "key_hash", "digest_hash")),
    )
    read = sa.text(
        f"SELECT log, {', '.join(COMMON)} FROM index_all_old "  # noqa: S608
        # a row-value comparison: both engines seek the primary key to it (an OR of the two
        # cases made each batch rescan the log from its start)
        "WHERE (log, idx) > (:log, :idx) ORDER BY log, idx LIMIT :n"
    )
    after: tuple[str, int] = ("", -1)
    while True:
        rows = bind.execute(read, {"log": after[0], "idx": after[1], "n": BATCH}).all()
        if not rows:
            break
        bind.execute(
            new.insert(),
            [
                {
                    "log_id": ids[r.log],
                    **{c: getattr(r, c) for c in COMMON},
                    "key_hash": _hash(r.key_fingerprint),
                    "digest_hash": _hash(r.digest),
                }
                for r in rows
            ],
        )
        after = (rows[-1].log, rows[-1].idx)
    op.drop_table("index_all_old")
    _create_indexes(NEW_INDEXES)


def downgrade() -> None:
    _set_aside("index_all", NEW_INDEXES)
    op.create_table(
        "index_all",
        sa.Column("log", LOG, nullable=False),
        *_common_columns(),
        sa.PrimaryKeyConstraint("log", "idx", name="pk_index_all"),
        sqlite_with_rowid=False,
    )
    columns = ", ".join(COMMON)
    op.execute(
        f"INSERT INTO index_all (log, {columns}) "  # noqa: S608
        f"SELECT l.log, {', '.join('o.' + c for c in COMMON)} "
        "FROM index_all_old o JOIN index_all_logs l ON l.id = o.log_id"
    )
    op.drop_table("index_all_old")
    op.drop_table("index_all_logs")
    _create_indexes(OLD_INDEXES)
