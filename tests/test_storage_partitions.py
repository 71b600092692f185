"""index_all across partitions (PostgreSQL: one per log and range of ``CHUNK`` indexes;
SQLite: one table, the same answers): paging crosses partitions in order, retention drops
whole partitions and deletes the rest, a dropped range is created again when rows return,
and revision 0011 keeps every row both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.storage import engine as engines
from monitor.storage.batch import Batch
from monitor.storage.history_query import HistoryQuery
from monitor.storage.indexrow import IndexRow
from monitor.storage.partitions import CHUNK, partitions
from monitor.storage.store import Store
from tests.storage_support import ENGINES, T0, fresh_url, pg_databases_fixture, run

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)

LOGS = ("log-a", "log-b")
# three ranges of log-a (the first and the third hold old rows only), one of log-b
KEYS = [("log-a", i) for i in (5, 6, CHUNK - 1, CHUNK, CHUNK + 7, 3 * CHUNK + 1)] + [("log-b", 2)]


def _time(log: str, idx: int) -> int:
    return 1_000 if idx < CHUNK or idx >= 3 * CHUNK else 5_000


def _row(log: str, idx: int) -> IndexRow:
    return IndexRow(log, idx, _time(log, idx), "hashedrekord", san="a@example.com")


@pytest.fixture(params=ENGINES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


async def _store_all(s: Store) -> None:
    for log in LOGS:
        await s.register_log(log, "v2", "https://example.test")
    for log in LOGS:  # one batch a log, crossing ranges
        rows = tuple(_row(lg, i) for lg, i in KEYS if lg == log)
        await s.store_batch(Batch(log, rows[-1].index + 1, index_rows=rows))


async def _pages(s: Store, q: HistoryQuery) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    while True:
        page = await s.history(q)
        out += [(e.log, e.index) for e in page.items]
        if page.next_cursor is None:
            return out
        q = HistoryQuery(all_entries=True, san=q.san, limit=q.limit, cursor=page.next_cursor)


async def _partition_names(s: Store) -> list[tuple[int, int]]:
    if s.dialect != "postgresql":
        return []
    async with s.engine.connect() as conn:
        return [(log_id, chunk) for log_id, chunk, _ in await partitions(conn)]


def test_paging_crosses_partitions_and_retention_drops_them(empty_url: str) -> None:
    async def body() -> None:
        s = await Store.open(empty_url)
        try:
            await _store_all(s)
            if s.dialect == "postgresql":
                assert await _partition_names(s) == [(1, 0), (1, 1), (1, 3), (2, 0)]
            q = HistoryQuery(all_entries=True, san="a@example.com", limit=2)
            assert await _pages(s, q) == KEYS
            ranged = HistoryQuery(log="log-a", index_min=6, index_max=CHUNK, all_entries=True)
            assert [e.index for e in (await s.history(ranged)).items] == [6, CHUNK - 1, CHUNK]

            # log-a's ranges 0 and 3 hold old rows only; log-b's is left to the next purge
            cutoff = T0.fromtimestamp(2_000, T0.tzinfo)
            assert await s.purge_index_all(cutoff, "log-a") == 4
            if s.dialect == "postgresql":
                assert await _partition_names(s) == [(1, 1), (2, 0)]
            assert await _pages(s, q) == [("log-a", CHUNK), ("log-a", CHUNK + 7), ("log-b", 2)]
            assert await s.purge_index_all(cutoff) == 1
            assert await s.purge_index_all(cutoff) == 0

            # rows of a dropped range come back: its partition is created again
            await s.store_batch(Batch("log-a", 3 * CHUNK + 2, index_rows=(_row("log-a", 5),)))
            left = [("log-a", 5), ("log-a", CHUNK), ("log-a", CHUNK + 7)]
            assert await _pages(s, q) == left
        finally:
            await s.close()

    run(body)


def test_a_batch_that_fails_leaves_no_partition(empty_url: str) -> None:
    """The partition is created in the batch's transaction, and goes if it rolls back."""

    async def body() -> None:
        s = await Store.open(empty_url)
        try:
            await s.register_log("log-a", "v2", "https://example.test")

            def fail(step: str) -> None:
                if step == "index_all":
                    raise RuntimeError("crash before commit")

            s.after_step = fail
            with pytest.raises(RuntimeError):
                await s.store_batch(Batch("log-a", 8, index_rows=(_row("log-a", 7),)))
            s.after_step = None
            assert await _partition_names(s) == []
            await s.store_batch(Batch("log-a", 8, index_rows=(_row("log-a", 7),)))
            page = await s.history(HistoryQuery(all_entries=True))
            assert [(e.log, e.index) for e in page.items] == [("log-a", 7)]
        finally:
            await s.close()

    run(body)


def test_0011_keeps_every_row_both_ways(empty_url: str) -> None:
    async def rows(eng: Any) -> list[tuple[Any, ...]]:
        async with eng.connect() as conn:
            sql = "SELECT log_id, idx, time, san FROM index_all ORDER BY log_id, idx"
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]

    async def body() -> None:
        eng = engines.make_engine(empty_url)
        try:
            await engines.upgrade(eng, "0010")
            async with eng.begin() as conn:
                await conn.execute(
                    text("INSERT INTO index_all_logs (id, log) VALUES (1, 'log-a'), (2, 'log-b')")
                )
                await conn.execute(
                    text(
                        "INSERT INTO index_all (log_id, idx, time, kind, san) "
                        "VALUES (:log_id, :idx, :time, 'hashedrekord', 'a@example.com')"
                    ),
                    [
                        {"log_id": LOGS.index(log) + 1, "idx": i, "time": _time(log, i)}
                        for log, i in KEYS
                    ],
                )
            before = await rows(eng)
            assert len(before) == len(KEYS)
            await engines.upgrade(eng)
            assert await rows(eng) == before
            await engines.downgrade(eng, "0010")
            assert await rows(eng) == before
            await engines.upgrade(eng)
        finally:
            await eng.dispose()
        s = await Store.open(empty_url, migrate=False)
        try:
            if s.dialect == "postgresql":
                assert await _partition_names(s) == [(1, 0), (1, 1), (1, 3), (2, 0)]
            q = HistoryQuery(all_entries=True, san="a@example.com", limit=3)
            assert await _pages(s, q) == KEYS
        finally:
            await s.close()

    run(body)
