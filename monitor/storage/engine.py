"""Engines and migrations: database URLs, connection set-up (SQLite pragmas), and Alembic run
from inside the package.

URLs: ``sqlite:///path`` (or a bare file path) and ``postgresql://user@host/db`` are accepted
and mapped to the async drivers (aiosqlite, asyncpg).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from monitor.core.errors import StorageError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> URL:
    """The async-driver URL for ``url``; a string with no ``://`` is a SQLite file path."""
    if "://" not in url:
        url = f"sqlite+aiosqlite:///{url}"
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"bad database URL: {e}") from None
    driver = _DRIVERS.get(u.drivername)
    if driver is None:
        raise StorageError(
            f"unsupported database {u.drivername!r}: use sqlite:///FILE or postgresql://..."
        )
    if driver.startswith("sqlite") and u.database in (None, "", ":memory:"):
        raise StorageError("SQLite needs a file: an in-memory database is one per connection")
    return u.set(drivername=driver)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy (not the sqlite3 module) decide where transactions begin: see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA foreign_keys = ON")
    # 64 MB of page cache (default 2 MB): the index_all and identity indexes take random keys,
    # and re-reading their pages for every batch was a measurable share of a catch-up
    cur.execute("PRAGMA cache_size = -65536")
    # checkpoint the WAL every 64 MB (default 4 MB): a page rewritten by many batches is then
    # copied into the database once, not once per checkpoint
    cur.execute("PRAGMA wal_autocheckpoint = 16384")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then
    # writes can fail at once (SQLITE_BUSY) instead of waiting for another writer.
    write = conn.get_execution_options().get("tlog_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _private_file(path: Path) -> None:
    """Create the SQLite file (and the directories the monitor creates for it) readable by
    its owner only: it holds what the monitor found, and SQLite gives its WAL and shared
    memory files the database file's mode. An existing file or directory is left as it is."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for d in reversed(missing):
            d.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as e:
        raise StorageError(f"cannot create the database {path}: {e.strerror or e}") from None
    os.close(fd)


# PostgreSQL: how long a statement waits for a lock another session holds, and how long a
# session may sit in an open transaction without sending anything, before the server ends it.
# A writer paused inside a transaction (a stopped process, a partition) would otherwise hold its
# row locks, and block every other writer and `findings ack`, for as long as it stays paused.
# Every transaction of the monitor sends its statements back to back: the limits only ever
# cut short a wait or a process that is not running.
LOCK_TIMEOUT = 5.0
IDLE_IN_TRANSACTION_TIMEOUT = 10.0


def make_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 5,
    lock_timeout: float = LOCK_TIMEOUT,
    idle_in_transaction_timeout: float = IDLE_IN_TRANSACTION_TIMEOUT,
    application_name: str | None = None,
) -> AsyncEngine:
    """An engine for ``url``; on PostgreSQL its sessions bound lock waits and idle
    transactions (seconds), and name themselves ``application_name`` (who holds what, in
    ``pg_stat_activity``)."""
    u = normalize_url(url)
    if u.drivername.startswith("sqlite"):
        assert u.database is not None
        _private_file(Path(u.database))
        engine = create_async_engine(u, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    settings = {
        "lock_timeout": str(round(lock_timeout * 1000)),
        "idle_in_transaction_session_timeout": str(round(idle_in_transaction_timeout * 1000)),
    }
    if application_name is not None:
        settings["application_name"] = application_name
    return create_async_engine(
        u,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        connect_args={"server_settings": settings},
    )


# ----------------------------------------------------------------------------------- Alembic


@contextmanager
def migrations_dir() -> Iterator[Path]:
    """The Alembic scripts: shipped in the wheel as ``monitor/_migrations``, or ``migrations/``
    beside the package in a source checkout."""
    packaged = resources.files("monitor") / "_migrations"
    if packaged.is_dir():
        with resources.as_file(packaged) as p:
            yield p
        return
    here = Path(__file__).resolve().parents[2] / "migrations"
    if not (here / "env.py").is_file():
        raise StorageError(f"migration scripts not found (looked in the package and {here})")
    yield here


def alembic_config(script_location: Path, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    with migrations_dir() as d:
        head = ScriptDirectory.from_config(alembic_config(d)).get_current_head()
    assert head is not None
    return head


def revisions() -> list[str]:
    """Every revision of the schema, oldest first."""
    with migrations_dir() as d:
        scripts = ScriptDirectory.from_config(alembic_config(d))
        return [s.revision for s in reversed(list(scripts.walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade_sync(conn: Connection, revision: str = "head") -> None:
    with migrations_dir() as d:
        command.upgrade(alembic_config(d, conn), revision)


def downgrade_sync(conn: Connection, revision: str) -> None:
    with migrations_dir() as d:
        command.downgrade(alembic_config(d, conn), revision)


# pg_advisory_xact_lock's key while migrating ("tlogmig" in ASCII): replicas that start
# together migrate one after the other, and the later ones find nothing left to do
MIGRATION_KEY = int.from_bytes(b"tlogmig", "big")


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` to ``revision`` in one transaction."""
    async with engine.connect() as plain:
        conn = await plain.execution_options(tlog_write=True)
        async with conn.begin():
            if engine.dialect.name == "postgresql":
                # another replica's migration may take longer than the usual lock wait
                await conn.exec_driver_sql("SET LOCAL lock_timeout = '10min'")
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_KEY})")
            await conn.run_sync(upgrade_sync, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.connect() as plain:
        conn = await plain.execution_options(tlog_write=True)
        async with conn.begin():
            await conn.run_sync(downgrade_sync, revision)


async def revision_of(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)
