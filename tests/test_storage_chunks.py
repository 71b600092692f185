"""Value indexes local to chunks of the log (SQLite: of the table; PostgreSQL: of each
partition of ``index_all``): a query by value finds its rows in every chunk and partition,
in (log, index) order, page after page, within its index bounds, seeking each chunk in
order; revisions 0013 (SQLite) and 0014 (PostgreSQL) build the chunked indexes on a
populated database and back, keeping every row and every answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.storage import engine as engines
from monitor.storage.batch import Batch
from monitor.storage.chunks import CHUNK_BITS
from monitor.storage.history_query import (
    HistoryQuery,
    history_select,
    history_statement,
    index_all_select,
)
from monitor.storage.indexrow import IndexRow
from monitor.storage.partitions import CHUNK as PART
from monitor.storage.store import Store
from tests.storage_support import (
    ENGINES,
    PgDatabases,
    cert_record,
    fresh_url,
    key_record,
    pg_databases_fixture,
    require_postgres,
    run,
    sha,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)

CHUNK = 1 << CHUNK_BITS
SAN = "a@example.com"
KEY = "sha256:" + "ab" * 32
DIGEST = "sha256:" + "cd" * 32
SHARED = str(sha("shared"))
# log-a: chunks 0, 1, 3 and 15 (2 empty) of its first partition (PostgreSQL), 16 of its
# second, 37 of its third; log-b: chunks 0 and 2 of its first partition, 16 of its second
A_KEYS = (5, 6, CHUNK - 1, CHUNK, CHUNK + 7, 3 * CHUNK + 1, PART - 1, PART)
KEYS = [("log-a", i) for i in (*A_KEYS, 2 * PART + 5 * CHUNK + 3)]
KEYS += [("log-b", i) for i in (2, 2 * CHUNK + 3, PART + 9)]
# other values, same chunks
OTHERS = [("log-a", 7), ("log-a", CHUNK + 8), ("log-a", PART + 1), ("log-b", 3)]

INDEX_ALL_QUERIES = {
    "san": HistoryQuery(all_entries=True, san=SAN),
    "san prefix": HistoryQuery(all_entries=True, san="a@*"),
    "key": HistoryQuery(all_entries=True, fingerprint=KEY),
    "digest": HistoryQuery(all_entries=True, digest=DIGEST),
    "san + issuer": HistoryQuery(all_entries=True, san=SAN, issuer="https://accounts.google.com"),
}
MATCHED_QUERIES = {
    "matched san": HistoryQuery(san=SAN),
    "matched san prefix": HistoryQuery(san="a@*"),
    "matched digest": HistoryQuery(digest=SHARED),
    "matched ext": HistoryQuery(ext=("source-repository-uri", "https://github.com/acme/app")),
}


@pytest.fixture(params=ENGINES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


def _index_row(log: str, idx: int, found: bool) -> IndexRow:
    if found:
        return IndexRow(
            log, idx, 1_000, "hashedrekord", SAN, "https://accounts.google.com", KEY, DIGEST
        )
    return IndexRow(log, idx, 1_000, "hashedrekord", "b@example.com", None, "sha256:0", "sha256:1")


async def _fill(s: Store) -> None:
    for log in ("log-a", "log-b"):
        await s.register_log(log, "v2", "https://example.test")
    for log in ("log-a", "log-b"):  # log-a first: its number in index_all is the lower
        keys = sorted(
            [(i, True) for lg, i in KEYS if lg == log]
            + [(i, False) for lg, i in OTHERS if lg == log]
        )
        records = tuple(
            cert_record(log, i, sans=(SAN,), artifact="shared")
            if found
            else key_record(log, i, "k")
            for i, found in keys
        )
        rows = tuple(_index_row(log, i, found) for i, found in keys)
        await s.store_batch(Batch(log, keys[-1][0] + 1, records=records, index_rows=rows))


async def _pages(s: Store, q: HistoryQuery) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    q = replace(q, limit=2)
    while True:
        page = await s.history(q)
        out += [(e.log, e.index) for e in page.items]
        if page.next_cursor is None:
            return out
        q = replace(q, cursor=page.next_cursor)


def test_queries_by_value_find_every_chunk_in_order(empty_url: str) -> None:
    async def body() -> None:
        s = await Store.open(empty_url)
        try:
            await _fill(s)
            for name, q in {**INDEX_ALL_QUERIES, **MATCHED_QUERIES}.items():
                assert await _pages(s, q) == KEYS, name
                # bounded by log and index: the chunks outside the bounds are not read
                bounded = replace(q, log="log-a", index_min=6, index_max=CHUNK)
                assert await _pages(s, bounded) == [("log-a", i) for i in (6, CHUNK - 1, CHUNK)]
                late = replace(q, index_min=CHUNK + 1)
                assert await _pages(s, late) == [k for k in KEYS if k[1] > CHUNK], name
                b = [k for k in KEYS if k[0] == "log-b"]
                assert await _pages(s, replace(q, log="log-b")) == b, name
                # a range across partitions, its first and last rows on their edges
                edges = replace(
                    q, log="log-a", index_min=PART - 1, index_max=2 * PART + 5 * CHUNK + 3
                )
                assert await _pages(s, edges) == KEYS[6:9], name
                assert await _pages(s, replace(q, log="log-c")) == [], name
        finally:
            await s.close()

    run(body)


async def _index_names(conn: AsyncConnection) -> set[str]:
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('index_all', 'entry_identities')"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    return {r[0] for r in (await conn.execute(text(sql))).all()}


async def _answers(conn: AsyncConnection, chunked: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every query's first page, through the statements (the store's own would be the
    head revision's); ``chunked``: through the engine's chunked indexes."""
    sqlite = conn.dialect.name == "sqlite"
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, q in INDEX_ALL_QUERIES.items():
        stmt = index_all_select(
            q, 100, chunked=chunked and sqlite, partitioned=chunked and not sqlite
        )
        out[name] = [tuple(r) for r in (await conn.execute(stmt)).all()]
    for name, q in MATCHED_QUERIES.items():
        rows = await conn.execute(history_select(q, 100, chunked=chunked and sqlite))
        out[name] = sorted((r.log, r.idx, r.san) for r in rows.all())
    return out


async def _rows(conn: AsyncConnection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of ``index_all`` and ``entry_identities``."""
    a = await conn.execute(text("SELECT * FROM index_all ORDER BY log_id, idx"))
    b = await conn.execute(text("SELECT * FROM entry_identities ORDER BY log, idx, field, value"))
    return [tuple(r) for r in a.all()], [tuple(r) for r in b.all()]


def test_chunked_index_migrations_keep_every_row_and_answer_both_ways(empty_url: str) -> None:
    """0014 chunks PostgreSQL's indexes of index_all (0013: no change there), 0013 SQLite's
    (0014: no change there); each downgrade builds the plain indexes again."""
    chunked = {"ix_index_all_chunk_san", "ix_index_all_chunk_key_hash"}
    chunked |= {"ix_index_all_chunk_digest_hash"}
    plain = {"ix_index_all_san", "ix_index_all_key_hash", "ix_index_all_digest_hash"}
    identities = {"ix_entry_identities_chunk_lookup"}  # SQLite's only
    identities_plain = {"ix_entry_identities_lookup"}

    async def body() -> None:
        s = await Store.open(empty_url)
        try:
            await _fill(s)
        finally:
            await s.close()
        sqlite = empty_url.startswith("sqlite")
        eng = engines.make_engine(empty_url)

        async def check(indexes: set[str], absent: set[str], chunked_answers: bool) -> None:
            async with eng.connect() as conn:
                assert await _rows(conn) == rows
                names = await _index_names(conn)
                assert indexes <= names
                assert not absent & names
                assert await _answers(conn, chunked_answers) == head

        try:
            async with eng.connect() as conn:
                rows = await _rows(conn)
                head = await _answers(conn, chunked=True)
                assert head == await _answers(conn, chunked=False)
            chunked_now = chunked | (identities if sqlite else identities_plain)
            await check(chunked_now, plain, True)
            await engines.downgrade(eng, "0013")
            if sqlite:  # 0014 changes nothing there
                await check(chunked_now, plain, True)
            else:
                await check(plain | identities_plain, chunked, False)
            await engines.downgrade(eng, "0012")
            await check(plain | identities_plain, chunked | identities, False)
            await engines.upgrade(eng)
            await check(chunked_now, plain, True)
        finally:
            await eng.dispose()
        assert len(head["san"]) == len(KEYS)
        assert len(head["matched san"]) == len(KEYS)
        assert len(rows[0]) == len(KEYS) + len(OTHERS)

    run(body)


def test_queries_by_value_walk_the_chunked_index_in_order(tmp_path: Path) -> None:
    """SQLite: each query by value seeks its chunked index, and the walk gives the page's
    order: no sort of the matches (a matched-entry query sorts only its page, joined to
    the entries)."""

    async def plan(s: Store, q: HistoryQuery) -> str:
        stmt = history_statement(q, 101, "sqlite")
        async with s.engine.connect() as conn:
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        return "\n".join(str(r[3]) for r in rows)

    async def body() -> None:
        s = await Store.open(f"sqlite:///{tmp_path / 'plans.db'}")
        try:
            await _fill(s)
            for name, q in {**INDEX_ALL_QUERIES, **MATCHED_QUERIES}.items():
                for shape in (
                    q,
                    replace(q, cursor=(await s.history(replace(q, limit=1))).next_cursor),
                ):
                    found = await plan(s, shape)
                    index = (
                        "ix_entry_identities_chunk_lookup"
                        if not q.all_entries
                        else "ix_index_all_chunk_"
                    )
                    assert (
                        f"USING COVERING INDEX {index}" in found or f"USING INDEX {index}" in found
                    ), found
                    sorts = found.count("USE TEMP B-TREE")
                    if (q.san or "").endswith("*"):
                        continue  # a prefix's matches come in value order, then sorted
                    assert sorts == (0 if q.all_entries else 1), (name, found)
        finally:
            await s.close()

    run(body)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _pg_plan(conn: AsyncConnection, stmt: Any) -> list[dict[str, Any]]:
    """The nodes of ``stmt``'s executed plan, each index scan's ``Index Name`` given as the
    partitioned index it belongs to."""
    parents = await conn.execute(
        text(
            "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
            "i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'"
        )
    )
    parent: dict[str, str] = {str(r[0]): str(r[1]) for r in parents.all()}
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    doc = (await conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))).scalar_one()
    nodes = list(_nodes((json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]))
    for n in nodes:
        if "Index Name" in n:
            n["Index Name"] = parent.get(n["Index Name"], n["Index Name"])
    return nodes


def test_postgresql_queries_by_value_seek_each_chunk_in_order(pg_dbs: PgDatabases) -> None:
    """PostgreSQL: each query by value scans its chunked index, one partition at a time
    (the others pruned), seeking its chunks by an array on the first column; no sort but
    the incremental one of each partition's page; and it stops at its limit, reading no
    partition after the one that fills it. A log and index range prunes partitions."""
    require_postgres()
    url = pg_dbs.create()
    drives = {"san": "san", "san + issuer": "san"}
    drives |= {"key": "key_hash", "digest": "digest_hash"}

    def executed(nodes: list[dict[str, Any]], index: str) -> dict[str, int]:
        """Rows each partition's scan of ``index`` returned (scans that ran)."""
        return {
            n["Relation Name"]: round(n["Actual Rows"] * n["Actual Loops"])
            for n in nodes
            if n.get("Index Name") == index and n["Actual Loops"] > 0
        }

    async def body() -> None:
        s = await Store.open(url)
        try:
            await _fill(s)
            async with s.engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
                # a few rows a partition: price out what only small tables would use (a
                # sort of every match: on large ones, of every match of a partition)
                for setting in ("seqscan", "bitmapscan", "sort"):
                    await conn.execute(text(f"SET enable_{setting} = off"))
                for name, q in INDEX_ALL_QUERIES.items():
                    if name == "san prefix":
                        # sorted either way (its matches come in value order): on a few
                        # rows the planner rightly reads the primary key instead
                        continue
                    chunk_index = f"ix_index_all_chunk_{drives[name]}"
                    # the first page of 2 (a limit of 3): 7 rows match in log-a's first
                    # partition, which fills it; its second is read for one row (the end
                    # of the first one's group), log-b's are not read
                    nodes = await _pg_plan(conn, index_all_select(q, 3, partitioned=True))
                    scans = [n for n in nodes if n.get("Index Name") == chunk_index]
                    assert scans, (name, nodes)
                    for n in scans:
                        assert "(idx >> 20) = ANY" in n["Index Cond"], n
                    used = {n["Index Name"] for n in nodes if "Index Name" in n}
                    assert used <= {chunk_index, "pk_index_all", "pk_index_all_logs"}, used
                    sorts = [n for n in nodes if n["Node Type"] == "Sort"]
                    assert [n["Node Type"] for n in nodes][:2] == ["Limit", "Incremental Sort"]
                    assert not sorts, sorts
                    assert executed(nodes, chunk_index) == {"index_all_1_0": 3, "index_all_1_1": 1}
                    # bounded: only the partitions that can hold rows are read
                    bounded = replace(q, log="log-b", index_min=3)
                    nodes = await _pg_plan(conn, index_all_select(bounded, 3, partitioned=True))
                    assert executed(nodes, chunk_index) == {"index_all_2_0": 1, "index_all_2_1": 1}
                    page = await s.history(replace(q, limit=3))
                    after = replace(q, cursor=page.next_cursor)
                    nodes = await _pg_plan(conn, index_all_select(after, 100, partitioned=True))
                    got = executed(nodes, chunk_index)
                    # the cursor's chunk onwards (log-a's first partition: 4 rows left)
                    assert got == {
                        "index_all_1_0": 4,
                        "index_all_1_1": 1,
                        "index_all_1_2": 1,
                        "index_all_2_0": 2,
                        "index_all_2_1": 1,
                    }, got
                ranged = HistoryQuery(
                    all_entries=True, log="log-a", index_min=PART, index_max=PART + 5
                )
                nodes = await _pg_plan(conn, index_all_select(ranged, 101, partitioned=True))
                scanned = {
                    n["Relation Name"]
                    for n in nodes
                    if re.fullmatch(r"index_all_\d+_\d+", n.get("Relation Name", ""))
                    and n["Actual Loops"] > 0
                }
                assert scanned == {"index_all_1_1"}, nodes
        finally:
            await s.close()

    run(body)
