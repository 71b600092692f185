"""index_all at hundreds of partitions (PostgreSQL), made as the monitor makes them
(``store_batch``), a row or two each: queries return the right rows across all of them (by
value: partition after partition, page after page), retention drops exactly the partitions
whose rows have all expired (wherever they are) and deletes the other expired rows, and
revision 0012 repartitions a populated database of 1,048,576-index ranges into the wider
ones and back."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.storage import engine as engines
from monitor.storage.batch import Batch
from monitor.storage.history_query import HistoryQuery
from monitor.storage.indexrow import IndexRow
from monitor.storage.partitions import CHUNK, CHUNK_BITS, partitions
from monitor.storage.store import Store
from tests.storage_support import PgDatabases, pg_databases_fixture, require_postgres, run

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)

A_PARTS, B_PARTS = 240, 60  # partitions of log-a and log-b
T_BASE = 1_000_000


def _fp(log: str, k: int) -> str:
    return f"sha256:{log}-{k:04d}"


def _rows(log: str, parts: int) -> list[IndexRow]:
    """Two rows at the start of each of ``parts`` ranges (the second with another SAN);
    times grow with the range."""
    return [
        IndexRow(
            log,
            k * CHUNK + j,
            T_BASE + 10 * k + j,
            "hashedrekord",
            san=f"{'a' if j == 0 else 'b'}@example.com",
            issuer="https://accounts.example",
            key_fingerprint=_fp(log, k) if j == 0 else None,
        )
        for k in range(parts)
        for j in range(2)
    ]


@pytest.fixture(scope="module")
def filled(pg_dbs: PgDatabases) -> str:
    """A database holding the rows, filled once a module (a few seconds)."""
    require_postgres()
    url = pg_dbs.create()

    async def fill() -> None:
        s = await Store.open(url)
        try:
            for log, parts in (("log-a", A_PARTS), ("log-b", B_PARTS)):
                await s.register_log(log, "v2", "https://example.test")
                rows = tuple(_rows(log, parts))
                await s.store_batch(Batch(log, rows[-1].index + 1, index_rows=rows))
        finally:
            await s.close()  # no connection left: it can be copied

    run(fill)
    return url


@pytest.fixture
def store(pg_dbs: PgDatabases, filled: str) -> str:
    """A copy of ``filled`` of the test's own."""
    return pg_dbs.create(copy_of=filled)


async def _all_pages(s: Store, q: HistoryQuery) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = await s.history(replace(q, cursor=cursor))
        out += [(e.log, e.index) for e in page.items]
        if (cursor := page.next_cursor) is None:
            return out


def test_queries_are_right_across_hundreds_of_partitions(store: str) -> None:
    async def body() -> None:
        s = await Store.open(store)
        try:
            async with s.engine.connect() as conn:
                assert len(await partitions(conn)) == A_PARTS + B_PARTS

            # a SAN in every partition: pages cross them all, in (log, index) order
            every = [("log-a", k * CHUNK) for k in range(A_PARTS)]
            every += [("log-b", k * CHUNK) for k in range(B_PARTS)]
            q = HistoryQuery(san="a@example.com", all_entries=True, limit=100)
            assert await _all_pages(s, q) == every
            # pages of 7 (PostgreSQL: each ends within a partition's chunk, the next starts
            # past the cursor in it), and a log and range across partitions
            assert await _all_pages(s, replace(q, limit=7)) == every
            mid = replace(q, log="log-a", index_min=99 * CHUNK, index_max=120 * CHUNK - 1)
            assert await _all_pages(s, replace(mid, limit=4)) == every[99:120]

            # a key found in one partition of all of them, and a SAN prefix
            key = HistoryQuery(fingerprint=_fp("log-b", 37), all_entries=True)
            assert [(e.log, e.index) for e in (await s.history(key)).items] == [
                ("log-b", 37 * CHUNK)
            ]
            prefix = HistoryQuery(san="b@*", all_entries=True, log="log-b", limit=500)
            found = [(e.log, e.index) for e in (await s.history(prefix)).items]
            assert found == [("log-b", k * CHUNK + 1) for k in range(B_PARTS)]

            # a time range across three partitions' rows
            since = datetime.fromtimestamp(T_BASE + 10 * 100, UTC)
            until = datetime.fromtimestamp(T_BASE + 10 * 103, UTC)
            timed = HistoryQuery(since=since, until=until, all_entries=True, log="log-a")
            got = [e.index for e in (await s.history(timed)).items]
            assert got == [k * CHUNK + j for k in (100, 101, 102) for j in (0, 1)]

            # a log and index range across two partitions, and a log with no rows
            ranged = HistoryQuery(
                log="log-a", index_min=150 * CHUNK + 1, index_max=151 * CHUNK, all_entries=True
            )
            got = [e.index for e in (await s.history(ranged)).items]
            assert got == [150 * CHUNK + 1, 151 * CHUNK]
            unknown = HistoryQuery(log="log-z", index_min=0, index_max=9, all_entries=True)
            assert (await s.history(unknown)).items == ()
        finally:
            await s.close()

    run(body)


def test_retention_drops_the_expired_partitions_from_the_oldest(store: str) -> None:
    async def body() -> None:
        s = await Store.open(store)
        try:
            async with s.engine.begin() as conn:  # old rows after newer ones
                await conn.execute(
                    text(
                        "UPDATE index_all SET time = 5 WHERE log_id = 1 "
                        f"AND (idx = {230 * CHUNK} OR idx >> {CHUNK_BITS} = 235)"
                    )
                )
            cutoff = datetime.fromtimestamp(T_BASE + 10 * 120, UTC)  # ranges 0-119 of each log
            assert await s.purge_index_all(cutoff, "log-a") == 2 * 120 + 1 + 2
            async with s.engine.connect() as conn:
                left = [(log, k) for log, k, _ in await partitions(conn)]
            # log-a's from 120 on but 235 (230 kept: its one old row went by DELETE)
            a_left = [k for k in range(120, A_PARTS) if k != 235]
            assert left == [(1, k) for k in a_left] + [(2, k) for k in range(B_PARTS)]
            q = HistoryQuery(san="a@example.com", all_entries=True, log="log-a", limit=500)
            kept = [e.index for e in (await s.history(q)).items]
            assert kept == [k * CHUNK for k in a_left if k != 230]

            assert await s.purge_index_all(cutoff) == 2 * B_PARTS
            async with s.engine.connect() as conn:
                assert [log for log, _, _ in await partitions(conn)] == [1] * len(a_left)
            assert await s.purge_index_all(cutoff) == 0
        finally:
            await s.close()

    run(body)


def _migration(name: str) -> Any:
    with engines.migrations_dir() as d:
        path = next((d / "versions").glob(name))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def test_the_latest_repartitioning_matches_the_chunk() -> None:
    """Partitions the monitor creates fit those migration 0012 made."""
    assert _migration("0012_*.py").NEW_BITS == CHUNK_BITS


def test_0012_repartitions_a_populated_database_both_ways(pg_dbs: PgDatabases) -> None:
    require_postgres()
    url = pg_dbs.create()
    narrow = 20
    # rows in 40 ranges of 2**20 of log 1 (three ranges of 2**24) and two of log 2
    keys = [(1, (k << narrow) + j) for k in range(40) for j in (0, 3)] + [(2, 7), (2, 9 << 24)]

    async def state(eng: AsyncEngine) -> tuple[list[tuple[Any, ...]], set[tuple[int, int]]]:
        async with eng.connect() as conn:
            sql = "SELECT log_id, idx, time, san FROM index_all ORDER BY log_id, idx"
            rows = [tuple(r) for r in (await conn.execute(text(sql))).all()]
            parts = {(log, k) for log, k, _ in await partitions(conn)}
        return rows, parts

    async def body() -> None:
        eng = engines.make_engine(url)
        try:
            await engines.upgrade(eng, "0011")
            async with eng.begin() as conn:
                await conn.execute(
                    text("INSERT INTO index_all_logs (id, log) VALUES (1, 'log-a'), (2, 'log-b')")
                )
                for log_id, k in sorted({(log_id, i >> narrow) for log_id, i in keys}):
                    lo, hi = k << narrow, (k + 1) << narrow
                    await conn.execute(
                        text(
                            f"CREATE TABLE index_all_{log_id}_{k} PARTITION OF index_all "
                            f"FOR VALUES FROM ({log_id}, {lo}) TO ({log_id}, {hi})"
                        )
                    )
                await conn.execute(
                    text(
                        "INSERT INTO index_all (log_id, idx, time, kind, san) "
                        "VALUES (:l, :i, :t, 'hashedrekord', 'a@example.com')"
                    ),
                    [{"l": log_id, "i": i, "t": 1000 + i % 97} for log_id, i in keys],
                )
            before, parts = await state(eng)
            assert len(before) == len(keys)
            assert len(parts) == 42

            await engines.upgrade(eng)
            rows, parts = await state(eng)
            assert rows == before
            assert parts == {(1, 0), (1, 1), (1, 2), (2, 0), (2, 9)}

            await engines.downgrade(eng, "0011")
            rows, parts = await state(eng)
            assert rows == before
            assert parts == {(log_id, i >> narrow) for log_id, i in keys}
            await engines.upgrade(eng)
        finally:
            await eng.dispose()
        s = await Store.open(url, migrate=False)
        try:  # the monitor's queries and writes on the repartitioned table
            q = HistoryQuery(san="a@example.com", all_entries=True, limit=30)
            got = await _all_pages(s, q)
            assert got == [("log-a" if log_id == 1 else "log-b", i) for log_id, i in keys]
            await s.register_log("log-a", "v2", "https://example.test")
            row = IndexRow("log-a", (2 << 24) + 5, 5, "hashedrekord", san="a@example.com")
            await s.store_batch(Batch("log-a", row.index + 1, index_rows=(row,)))
            ranged = HistoryQuery(
                log="log-a", index_min=row.index - 1, index_max=row.index, all_entries=True
            )
            assert [e.index for e in (await s.history(ranged)).items] == [row.index]
        finally:
            await s.close()

    run(body)
