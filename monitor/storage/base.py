"""What every part of ``Store`` shares: the tables, the clock, and the connection
plumbing (``StoreBase``: one writer at a time, failures raised as ``StorageError``)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from monitor.core.errors import StorageError
from monitor.storage.lock import Holder
from monitor.storage.models import (
    BackfillRow,
    Base,
    CheckpointRow,
    DeliveryAttempt,
    EntryIdentity,
    EntryRow,
    FindingRow,
    IndexAllRow,
    IndexLog,
    Log,
    MalformedRow,
    OutboxRow,
)

JSON = dict[str, Any]
T = TypeVar("T")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


LOGS = _table(Log)
CHECKPOINTS = _table(CheckpointRow)
ENTRIES = _table(EntryRow)
IDENTITIES = _table(EntryIdentity)
FINDINGS = _table(FindingRow)
OUTBOX = _table(OutboxRow)
ATTEMPTS = _table(DeliveryAttempt)
MALFORMED = _table(MalformedRow)
INDEX_ALL = _table(IndexAllRow)
INDEX_LOGS = _table(IndexLog)
BACKFILLS = _table(BackfillRow)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def orm(conn: AsyncConnection, stmt: Select[T]) -> list[T]:
    """The ORM objects that ``stmt`` selects, read on ``conn`` (detached, fully loaded)."""
    async with AsyncSession(bind=conn, expire_on_commit=False) as session:
        return list((await session.scalars(stmt)).all())


# SQLite's limit on parameters in one statement: 32,766 since 3.32, 999 before
_SQLITE_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_ROWS_PER_INSERT = 500
"""Rows of one multi-row INSERT on SQLite: large enough that a batch is a few statements, small
enough that one statement's text (prepared each time its row count is new) stays short."""


@functools.cache
def _values_insert(table: str, columns: tuple[str, ...], rows: int) -> str:
    """SQLite: INSERT ... VALUES (...), (...) ... ON CONFLICT DO NOTHING of ``rows`` rows."""
    row = f"({', '.join('?' * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our own names
        f"VALUES {', '.join([row] * rows)} ON CONFLICT DO NOTHING"
    )


class StoreBase:
    """The engine and the read/write plumbing that the parts of ``Store`` are built on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        # One writer at a time in this process: SQLite has one write lock per database, and
        # waiting here is cheaper than waiting on it.
        self._write_lock = asyncio.Lock()
        self.after_step: Callable[[str], None] | None = None
        """Test hook: called after each step of ``store_batch``, inside its transaction."""
        self.timing: Callable[[str, float], None] | None = None
        """Told the operation and the seconds it took, for each timed operation (metrics;
        the CLI tools leave it unset)."""
        self.holder = Holder.this_process()
        """This process, as it names itself in outbox claims and the write probe."""
        self.queued: Callable[[], None] | None = None
        """Told when a transaction that queued outbox rows has committed (the daemon wakes
        its sink workers: an alert leaves at once, not at their next poll)."""
        self._queuing = False  # the write under way queued outbox rows

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.connect() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(f"database read failed: {e}") from e

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed on exit, rolled back on any exception."""
        async with self._write_lock:
            self._queuing = False
            try:
                async with self._engine.connect() as plain:
                    conn = await plain.execution_options(tlog_write=True)
                    async with conn.begin():
                        yield conn
            except (SQLAlchemyError, OSError) as e:
                raise StorageError(f"database write failed: {e}") from e
            if self._queuing and self.queued is not None:
                self.queued()

    def _insert(self, table: Any) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING, in this engine's dialect."""
        if self._dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def _insert_many(self, conn: AsyncConnection, table: Any, rows: Sequence[JSON]) -> int:
        if not rows:
            return 0
        if self._dialect == "sqlite":
            # one executemany: sqlite3 sums the rows each statement changed into rowcount,
            # so the count is exact, without the cost of RETURNING
            result = await conn.execute(self._insert(table), list(rows))
            return max(result.rowcount, 0)
        # PostgreSQL: RETURNING counts what was really inserted (asyncpg's executemany
        # reports no row count)
        stmt = self._insert(table).returning(next(iter(table.primary_key.columns)))
        result = await conn.execute(stmt, list(rows))
        return len(result.all())

    async def _insert_stored(
        self,
        conn: AsyncConnection,
        table: Table,
        columns: tuple[str, ...],
        rows: Sequence[tuple[object, ...]],
    ) -> int:
        """``_insert_many`` for rows (value tuples in ``columns`` order) whose values are
        already as stored (cleaned as the column types would clean them) and are all text,
        integers or NULL. On SQLite they go in as multi-row INSERTs of up to
        ``_ROWS_PER_INSERT`` rows: the driver binds a statement's parameters in C and runs it in
        one step without the GIL, so the insert neither takes the GIL back per row (executemany
        does, and then stalls behind a busy event loop) nor pays SQLAlchemy's per-row parameter
        processing; measured against one JSON array unpacked by SQLite (``json_each``, which
        parses every row's text once per column), it costs about 12% less CPU per row."""
        if not rows:
            return 0
        if self._dialect != "sqlite":
            return await self._insert_many(
                conn, table, [dict(zip(columns, row, strict=True)) for row in rows]
            )
        per = min(_ROWS_PER_INSERT, _SQLITE_PARAMS // len(columns))
        added = 0
        for start in range(0, len(rows), per):
            part = rows[start : start + per]
            params = tuple(v for row in part for v in row)
            stmt = _values_insert(table.name, columns, len(part))
            result = await conn.exec_driver_sql(stmt, params)
            added += max(result.rowcount, 0)
        return added

    def _step(self, name: str) -> None:
        if self.after_step is not None:
            self.after_step(name)


TIMED_AS = "timed_as"  # the attribute of a timed method that holds its operation
S = TypeVar("S", bound=StoreBase)
P = ParamSpec("P")
R = TypeVar("R")
Method = Callable[Concatenate[S, P], Coroutine[Any, Any, R]]


def timed(operation: str) -> Callable[[Method[S, P, R]], Method[S, P, R]]:
    """Decorate a method of a store part: its time is told to the store's ``timing`` as
    ``operation`` (a failed call too: a slow failure is worth seeing). ``operation`` is the
    label of ``tlog_monitor_db_operation_seconds``: dashboards and alert rules name it."""

    def decorate(method: Method[S, P, R]) -> Method[S, P, R]:
        @functools.wraps(method)
        async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await method(self, *args, **kwargs)
            finally:
                if self.timing is not None:
                    self.timing(operation, time.perf_counter() - started)

        setattr(run, TIMED_AS, operation)
        return run

    return decorate


def operations(cls: type) -> dict[str, str]:
    """Method -> operation, for every timed method of ``cls``."""
    found = {name: getattr(getattr(cls, name, None), TIMED_AS, None) for name in dir(cls)}
    return {name: op for name, op in found.items() if op is not None}
