"""The whole store, SQLite or PostgreSQL: ``Store``. Only whoever opens the database holds
it; every other consumer takes its narrow part (``monitor.storage.ports``).

Guarantees (tested against SQLite and PostgreSQL by ``tests/test_storage_contract*.py``):

- every write is idempotent: entries are unique on (log, index), findings on their dedup
  key, outbox rows on (dedup key, sink, event), checkpoints on (log, origin, size, root);
  storing anything twice changes nothing;
- ``store_batch`` writes a batch (matches, findings, outbox rows, malformed entries,
  index_all rows, checkpoint, compact range and cursor) in ONE transaction: all or nothing;
- the cursor, the verified checkpoint and the compact range never move backwards, except
  that a batch for a new tree (Rekor v1 shard rotation) replaces the checkpoint and compact
  range when its cursor is not behind the stored one;
- a backfill batch moves its backfill's row forward (never back) and leaves the log's cursor,
  checkpoint and compact range alone;
- every history and findings query is answered from an index, and paged by a stable cursor.

Any database failure raises ``StorageError``: nothing is retried silently.

``Store`` is assembled from one part per job: ``logs_state`` (logs, checkpoints),
``batch`` (``store_batch``), ``backfills``, ``history``, ``findings_store``, ``outbox`` and
``coverage`` (what history searched, the names a query may use), ``images`` (registry
passes, image digests and their links to log entries);
``base`` holds the tables and the connection plumbing they share. Its consumers each take
the narrow part they need, a protocol of ``ports``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.errors import StorageError
from monitor.storage import engine as engines
from monitor.storage.backfills import BackfillsMixin
from monitor.storage.base import (
    ENTRIES,
    IDENTITIES,
    INDEX_ALL,
    timed,
)
from monitor.storage.batch import BatchMixin
from monitor.storage.coverage import CoverageMixin
from monitor.storage.findings_store import FindingsMixin, findings_select
from monitor.storage.history import HistoryMixin
from monitor.storage.history_query import history_select, history_statement, index_all_select
from monitor.storage.identities import identities
from monitor.storage.images import ImagesMixin
from monitor.storage.leases import LeasesMixin
from monitor.storage.lock import DatabaseLock, Holder
from monitor.storage.logs_state import LogsMixin
from monitor.storage.models import OutboxRow
from monitor.storage.outbox import OutboxMixin

# ``monitor.storage`` exports the public names from the modules that define them; these are
# the ones the benchmark and the tests import from here
__all__ = [
    "ENTRIES",
    "IDENTITIES",
    "INDEX_ALL",
    "Store",
    "findings_select",
    "history_select",
    "history_statement",
    "identities",
    "index_all_select",
]


class Store(
    BatchMixin,
    LogsMixin,
    BackfillsMixin,
    HistoryMixin,
    FindingsMixin,
    OutboxMixin,
    CoverageMixin,
    LeasesMixin,
    ImagesMixin,
):
    """The monitor's database. Open with ``await Store.open(url)``; close with ``close()``."""

    _lock: DatabaseLock | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        echo: bool = False,
        pool_size: int = 5,
        exclusive: bool = False,
        replicated: bool = False,
        holder: Holder | None = None,
        idle_in_transaction_timeout: float = engines.IDLE_IN_TRANSACTION_TIMEOUT,
    ) -> Store:
        """Connect; with ``migrate``, bring the schema to the latest revision first, else
        refuse a database that is not at it. ``pool_size``: PostgreSQL connections kept.
        ``exclusive``: first take the database's lock for the life of the store (a monitor
        that writes: see ``monitor.storage.lock``); ``DatabaseInUseError`` if another has it.
        ``replicated``: take it shared instead, as one replica of several (PostgreSQL).
        ``holder``: who this process is (default: named after the host).
        ``idle_in_transaction_timeout``: seconds PostgreSQL lets a session sit idle inside a
        transaction before ending it (a paused replica's locks go with it)."""
        me = holder or Holder.this_process()
        engine = engines.make_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            application_name=me.application_name(),
            idle_in_transaction_timeout=idle_in_transaction_timeout,
        )
        lock = None
        try:
            if exclusive or replicated:
                lock = await DatabaseLock.acquire(
                    engine, engines.normalize_url(url), me, shared=replicated
                )
            if migrate:
                await engines.upgrade(engine)
            else:
                current, head = await engines.revision_of(engine), engines.head_revision()
                if current != head:
                    raise StorageError(
                        f"database schema is at revision {current}, this monitor needs {head}: "
                        "run `tlog-monitor db upgrade`"
                    )
        except (SQLAlchemyError, OSError) as e:
            await _give_up(engine, lock)
            raise StorageError(f"cannot open database: {e}") from e
        except BaseException:
            await _give_up(engine, lock)
            raise
        store = cls(engine)
        store._lock = lock
        store.holder = me
        store.replicated = replicated
        return store

    @property
    def exclusive(self) -> bool:
        """This store holds the database's lock: no other monitor runs on it, so an outbox
        claim of another holder is a dead process's, free to take at once."""
        return self._lock is not None and not self.replicated

    @property
    def dialect(self) -> str:
        return self._dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        if self._dialect == "sqlite":
            # keeps the planner's statistics fresh where they matter (SQLite's advice)
            try:
                async with self._engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA optimize")
            except SQLAlchemyError:
                pass  # closing anyway: statistics are an optimisation
        lock, self._lock = self._lock, None
        await _give_up(self._engine, lock)

    @timed("outbox_backlog")
    async def outbox_backlog(self, sink: str) -> tuple[int, datetime | None]:
        """How many live rows of ``sink`` wait undelivered, and when the oldest of them was
        written (None: none wait); one query, for the outbox metrics."""
        o = OutboxRow
        stmt = select(func.count(), func.min(o.created_at)).where(
            o.sink == sink, o.delivered_at.is_(None), o.dead_at.is_(None)
        )
        async with self._read() as conn:
            depth, oldest = (await conn.execute(stmt)).one()
        return int(depth), oldest


async def _give_up(engine: AsyncEngine, lock: DatabaseLock | None) -> None:
    if lock is not None:
        # the connection is going anyway, and its lock with it
        with contextlib.suppress(SQLAlchemyError):
            await lock.release()
    await engine.dispose()
