"""Value indexes local to chunks of the log (SQLite; PostgreSQL keeps one per partition, and
must give the same answers): a query by value finds its rows in every chunk, in (log, index)
order, page after page, within its index bounds; revision 0013 builds the chunked indexes
on a populated database and back, keeping every row and every answer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.storage import engine as engines
from monitor.storage.batch import Batch
from monitor.storage.chunks import CHUNK_BITS
from monitor.storage.history_query import HistoryQuery, history_select, index_all_select
from monitor.storage.indexrow import IndexRow
from monitor.storage.store import Store
from tests.storage_support import (
    ENGINES,
    cert_record,
    fresh_url,
    key_record,
    pg_databases_fixture,
    run,
    sha,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)

CHUNK = 1 << CHUNK_BITS
SAN = "a@example.com"
KEY = "sha256:" + "ab" * 32
DIGEST = "sha256:" + "cd" * 32
SHARED = str(sha("shared"))
# log-a: chunks 0, 1 and 3 (2 empty), log-b: chunks 0 and 2
KEYS = [("log-a", i) for i in (5, 6, CHUNK - 1, CHUNK, CHUNK + 7, 3 * CHUNK + 1)] + [
    ("log-b", i) for i in (2, 2 * CHUNK + 3)
]
OTHERS = [("log-a", 7), ("log-a", CHUNK + 8), ("log-b", 3)]  # other values, same chunks

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
                assert await _pages(s, replace(q, log="log-b")) == KEYS[-2:], name
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
    head revision's)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, q in INDEX_ALL_QUERIES.items():
        rows = await conn.execute(index_all_select(q, 100, chunked=chunked))
        out[name] = [tuple(r) for r in rows.all()]
    for name, q in MATCHED_QUERIES.items():
        rows = await conn.execute(history_select(q, 100, chunked=chunked))
        out[name] = sorted((r.log, r.idx, r.san) for r in rows.all())
    return out


async def _counts(conn: AsyncConnection) -> tuple[int, int]:
    a = (await conn.execute(text("SELECT count(*) FROM index_all"))).scalar_one()
    b = (await conn.execute(text("SELECT count(*) FROM entry_identities"))).scalar_one()
    return a, b


def test_0013_keeps_every_row_and_answer_both_ways(empty_url: str) -> None:
    chunked = {"ix_index_all_chunk_san", "ix_index_all_chunk_key_hash"}
    chunked |= {"ix_index_all_chunk_digest_hash", "ix_entry_identities_chunk_lookup"}
    plain = {"ix_index_all_san", "ix_index_all_key_hash", "ix_index_all_digest_hash"}
    plain |= {"ix_entry_identities_lookup"}

    async def body() -> None:
        s = await Store.open(empty_url)
        try:
            await _fill(s)
        finally:
            await s.close()
        sqlite = empty_url.startswith("sqlite")
        eng = engines.make_engine(empty_url)
        try:
            async with eng.connect() as conn:
                counts = await _counts(conn)
                head = await _answers(conn, chunked=sqlite)
                assert (chunked if sqlite else plain) <= await _index_names(conn)
            await engines.downgrade(eng, "0012")
            async with eng.connect() as conn:
                assert await _counts(conn) == counts
                names = await _index_names(conn)
                assert plain <= names
                assert not chunked & names
                assert await _answers(conn, chunked=False) == head
            await engines.upgrade(eng)
            async with eng.connect() as conn:
                assert await _counts(conn) == counts
                names = await _index_names(conn)
                assert (chunked if sqlite else plain) <= names
                assert not (plain if sqlite else chunked) & names
                assert await _answers(conn, chunked=sqlite) == head
        finally:
            await eng.dispose()
        assert len(head["san"]) == len(KEYS)
        assert len(head["matched san"]) == len(KEYS)

    run(body)


def test_queries_by_value_walk_the_chunked_index_in_order(tmp_path: Path) -> None:
    """SQLite: each query by value seeks its chunked index, and the walk gives the page's
    order: no sort of the matches (a matched-entry query sorts only its page, joined to
    the entries)."""

    async def plan(s: Store, q: HistoryQuery) -> str:
        stmt = (index_all_select if q.all_entries else history_select)(q, 101, chunked=True)
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
