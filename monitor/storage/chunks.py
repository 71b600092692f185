"""The value indexes of ``index_all`` (and, on SQLite, ``entry_identities``) kept local to
ranges of ``CHUNK`` indexes of the log.

The indexes on SAN, key hash and digest hash, and on identities' values, take random keys:
in one B-tree as large as the table (or as a partition of ``index_all`` on PostgreSQL,
``monitor.storage.partitions``: 16,777,216 rows), a batch of rows dirties as many pages as
it has rows, scattered over indexes far larger than the page cache, and each is read,
written into the WAL and, at the next checkpoint, into the database. Here their keys start
with the chunk, ``idx >> CHUNK_BITS`` (SQLite: (log, chunk); PostgreSQL: the chunk, in each
partition, which holds one log): a batch writes into the newest chunk's part of each index
only, a subtree of one chunk's rows, which stays in the cache.

A query by value seeks each chunk, one seek per log and chunk, in index order, and is
ordered by (log, chunk, idx), the same order as (log, idx), which that walk gives without a
sort: see ``chunk_query`` (SQLite) and ``partition_query`` (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Index, TextClause, case, literal_column, text

from monitor.storage.paging import decode_cursor

CHUNK_BITS = 20
"""Indexes of one log per chunk (1,048,576; 16 a partition of ``index_all`` on PostgreSQL):
at 10,000,000 rows a query by value seeks ten chunks a log. Migrations ``0013`` (SQLite)
and ``0014`` (PostgreSQL) build the indexes with it: changing it needs a migration that
builds them again."""

CHUNKED = ("san", "key_hash", "digest_hash")
"""The ``index_all`` columns whose indexes are chunked."""

IDENTITY_LOOKUP = "ix_entry_identities_chunk_lookup"
"""``entry_identities``' index by (field, value) on SQLite, chunked as well: its values are
as random, and it takes about ten of them for each matched entry. PostgreSQL keeps (field,
value, log, idx): matched entries are a small share of the log."""


def _chunk_key() -> TextClause:
    """The chunk as an index key: the shift written out (each index its own clause)."""
    return text(f"(idx >> {CHUNK_BITS})")


def index_name(column: str) -> str:
    return f"ix_index_all_chunk_{column}"


def sqlite_index(name: str, log: str, *values: str) -> Index:
    """A chunked index of SQLite's schema. The shift is written out, not bound: SQLite uses
    an index on an expression only for a query holding the same expression."""
    return Index(name, log, _chunk_key(), *values, "idx").ddl_if(dialect="sqlite")


def postgresql_index(name: str, value: str) -> Index:
    """A chunked index of PostgreSQL's schema, in each partition of ``index_all``: no log
    (one a partition), the chunk first (``monitor.storage.partition_query``)."""
    return Index(name, _chunk_key(), value, "idx").ddl_if(dialect="postgresql")


def index_all_indexes() -> list[Index]:
    sqlite = [sqlite_index(index_name(c), "log_id", c) for c in CHUNKED]
    return sqlite + [postgresql_index(index_name(c), c) for c in CHUNKED]


def shift(col: Any, bits: int, op: str = ">>") -> Any:
    """``col >> bits`` (or ``<<``) with ``bits`` written out, not bound: an index on the
    shift serves only a query holding the same expression."""
    return col.op(op)(literal_column(str(bits)))


def chunk_of(idx_col: Any) -> ColumnElement[int]:
    """The chunk of ``idx_col``, as the indexes hold it."""
    return shift(idx_col, CHUNK_BITS)  # type: ignore[no-any-return]


def cursor_floor(log_col: Any, cursor: str, log_key: Callable[[str], Any]) -> Any:
    """The index a row of the log in ``log_col`` must be above to come after ``cursor``
    (-1 for the logs after the cursor's: each seek of a chunked walk is by log)."""
    log, idx = decode_cursor(cursor, (str, int))
    return case((log_col == log_key(log), idx), else_=-1)
