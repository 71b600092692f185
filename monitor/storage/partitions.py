"""``index_all`` on PostgreSQL: one partition per log and range of ``CHUNK`` indexes.

The table has an index on each of SAN, key hash and digest hash, whose keys are random: a
batch writes into as many pages of each as it has rows. In one table those indexes grow with
the log, and once they outgrow memory every batch reads and dirties pages scattered over all
of them (and, after each checkpoint, writes each page whole into the WAL once more): storing
got three times slower from 100,000 to 1,000,000 rows. Partitioned by (log, index range), a
batch writes into the indexes of the newest partition only, and within it, into the newest
chunk's part of each (they start with ``idx >> chunks.CHUNK_BITS``: ``monitor.storage.chunks``).
A query with a log or an index range reads only the partitions that can hold its rows; a
query by value reads the partitions one at a time, in (log, index) order, until its page is
full (``monitor.storage.partition_query``). Each query is planned over every partition, or
runs a plan that spans them all (a prepared statement's, pruned as it starts): what bounds
their count (``CHUNK``).

Partitions are created by ``store_batch`` when it first stores a row of their range, in the
batch's transaction (rolled back with it); retention drops a partition whose rows are all
past it instead of deleting them row by row. SQLite keeps one table, whose value indexes
are local to the same chunks.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHUNK_BITS = 24
CHUNK = 1 << CHUNK_BITS
"""Indexes of one log per partition: 16,777,216, about 12 days of the public Rekor v2 log
(1.4 million entries a day), so a year of it is about 30 partitions and Rekor v1's 200
million entries 12. Queries that no log or index range prunes (by SAN, key or digest) are
planned over every partition, and PostgreSQL 15's planning grows faster than their count:
with ranges of 1,048,576 (``0011``), 1,000 partitions took seconds to plan and 7,000 locks
a query (at about 60, 4-8 ms and 400). Its value indexes grow 16 times larger than with
those ranges, and with keys of (value, log, idx) a batch wrote all over them: at 10,000,000
rows (one partition) index_all rows went in at 0.46 of the rate at 100,000 (7,540 a second)
on 2 cores. Chunked (``0014``), a batch writes into one chunk's part of each: in three runs
of ``bench_storage`` on the same 2 cores, shared with other work (load 2-4), 12,100-16,100
rows a second at 10,000,000 rows against 13,000-19,000 at 100,000 (ratios 0.64 and 1.22
within a run; matched entries 0.73-0.76), and every query's p99 at 10,000,000 rows under
50 ms (47 at most). Migrations number partitions by it (``0012`` moved from 20 bits to 24):
changing it needs a migration that repartitions."""

PARENT = "index_all"
_LOCK = 0x7467_6C6F_6700_0011  # pg_advisory_xact_lock key: one creator of partitions at a time


def partition_name(log_id: int, chunk: int) -> str:
    return f"{PARENT}_{log_id}_{chunk}"


def create_statement(log_id: int, chunk: int) -> str:
    """The DDL creating the partition of ``log_id`` for indexes ``[chunk * CHUNK, ...)``
    (the parent's indexes and primary key come with it)."""
    lo, hi = chunk * CHUNK, (chunk + 1) * CHUNK
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(log_id, chunk)} PARTITION OF {PARENT} "
        f"FOR VALUES FROM ({log_id}, {lo}) TO ({log_id}, {hi})"
    )


async def ensure(conn: AsyncConnection, keys: Iterable[tuple[int, int]]) -> None:
    """Create the partitions that rows with these (log number, index) keys go into, where
    missing. One query when they all exist (every batch but one in a million rows); else,
    under a transaction-level advisory lock, so that two writers never race to create one.
    Creating takes a short exclusive lock on ``index_all`` (readers wait for this batch's
    commit, once a partition)."""
    wanted = sorted({(log_id, idx >> CHUNK_BITS) for log_id, idx in keys})
    if not wanted:
        return
    names = [partition_name(*w) for w in wanted]
    missing_q = text(
        "SELECT n FROM unnest(CAST(:names AS text[])) AS n WHERE to_regclass(n) IS NULL"
    )
    missing = {r[0] for r in await conn.execute(missing_q, {"names": names})}
    if not missing:
        return
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    for w, name in zip(wanted, names, strict=True):
        if name in missing:
            await conn.execute(text(create_statement(*w)))


async def partitions(conn: AsyncConnection) -> list[tuple[int, int, str]]:
    """(log number, chunk, name) of every partition of ``index_all``."""
    q = text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:parent AS regclass)"
    )
    out: list[tuple[int, int, str]] = []
    for (name,) in await conn.execute(q, {"parent": PARENT}):
        log_id, chunk = name.removeprefix(f"{PARENT}_").split("_")
        out.append((int(log_id), int(chunk), name))
    return sorted(out)


async def drop_expired(conn: AsyncConnection, cutoff: int, log_id: int | None) -> int:
    """Drop each partition (of ``log_id``, or of every log) whose rows are all older than
    ``cutoff`` (unix seconds); how many rows went with them. Each is looked at, not only
    the oldest ranges: a range stored late (a backfill) holds rows newer than the ranges
    after it when their time is when they were seen."""
    gone = 0
    for owner, _, name in await partitions(conn):
        if log_id is not None and owner != log_id:
            continue
        # both answered from the partition's indexes (time, primary key)
        newest = f"SELECT max(time) FROM {name}"  # noqa: S608
        if ((await conn.execute(text(newest))).scalar() or -1) >= cutoff:
            continue
        # a writer may be adding rows to it: look again once no one can
        await conn.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
        if ((await conn.execute(text(newest))).scalar() or -1) >= cutoff:
            continue
        gone += (await conn.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()  # noqa: S608
        await conn.execute(text(f"DROP TABLE {name}"))
    return gone
