"""PostgreSQL sessions bound their lock waits and their idle transactions: a writer paused
inside a transaction (a stopped process, a partition) holds its row locks only until the server
ends its session, and any other writer waits for a lock at most ``lock_timeout``."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.storage import engine as engines
from monitor.storage.store import Store
from tests.storage_support import PgDatabases, pg_databases_fixture, require_postgres, run

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


def sqlstate(e: DBAPIError) -> str | None:
    return getattr(e.orig, "sqlstate", None)  # asyncpg's SQLSTATE, as the driver adapter keeps it


def test_the_monitor_s_sessions_carry_the_limits(pg_dbs: PgDatabases) -> None:
    require_postgres()
    url = pg_dbs.create()

    async def body() -> None:
        store = await Store.open(url)
        try:
            async with store.engine.connect() as conn:
                lock = (await conn.execute(text("SHOW lock_timeout"))).scalar_one()
                idle = (
                    await conn.execute(text("SHOW idle_in_transaction_session_timeout"))
                ).scalar_one()
            assert (lock, idle) == ("5s", "10s")
        finally:
            await store.close()

    run(body)


def test_a_lock_wait_ends_and_a_paused_transaction_loses_its_locks(pg_dbs: PgDatabases) -> None:
    require_postgres()
    url = pg_dbs.create()

    async def body() -> None:
        eng = engines.make_engine(url, lock_timeout=0.3, idle_in_transaction_timeout=1.0)
        try:
            async with eng.begin() as conn:
                await conn.execute(text("CREATE TABLE cursor_row (id int PRIMARY KEY, v int)"))
                await conn.execute(text("INSERT INTO cursor_row VALUES (1, 0)"))
            paused = await eng.connect()
            await paused.begin()
            await paused.execute(text("UPDATE cursor_row SET v = 1 WHERE id = 1"))
            # another writer waits for the row at most lock_timeout, then is told why
            started = time.monotonic()
            with pytest.raises(DBAPIError) as waited:
                async with eng.begin() as conn:
                    await conn.execute(text("UPDATE cursor_row SET v = 2 WHERE id = 1"))
            assert sqlstate(waited.value) == "55P03"  # lock_not_available
            assert time.monotonic() - started < 3.0
            # the paused writer sends nothing for longer than the idle limit: the server ends
            # its session, its update is rolled back and its lock released
            await asyncio.sleep(2.0)
            async with eng.begin() as conn:
                await conn.execute(text("UPDATE cursor_row SET v = 2 WHERE id = 1"))
            with pytest.raises(DBAPIError):
                await paused.execute(text("UPDATE cursor_row SET v = 3 WHERE id = 1"))
            await paused.close()
            async with eng.connect() as conn:
                v = (await conn.execute(text("SELECT v FROM cursor_row"))).scalar_one()
            assert v == 2  # the paused writer's write never landed
        finally:
            await eng.dispose()

    run(body)
