"""What tests read (and, for one, write) in the database that the monitor never needs: the
outbox rows of a finding, the rows of each table, the backfills, the outbox rows due. They
read through the store's engine, so ``Store`` keeps only what the monitor uses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select

from monitor.storage import BackfillState, CheckpointData, OutboxItem, Store
from monitor.storage.backfills import _state as backfill_state
from monitor.storage.base import (
    ATTEMPTS,
    BACKFILLS,
    CHECKPOINTS,
    ENTRIES,
    FINDINGS,
    IDENTITIES,
    INDEX_ALL,
    INDEX_LOGS,
    LOGS,
    MALFORMED,
    OUTBOX,
    orm,
    utcnow,
)
from monitor.storage.models import BackfillRow, OutboxRow
from monitor.storage.outbox import _outbox as outbox_item_of

TABLES = (
    LOGS,
    CHECKPOINTS,
    ENTRIES,
    IDENTITIES,
    FINDINGS,
    OUTBOX,
    ATTEMPTS,
    MALFORMED,
    INDEX_ALL,
    INDEX_LOGS,
    BACKFILLS,
)


async def _outbox(store: Store, stmt: Select[OutboxRow]) -> list[OutboxItem]:
    async with store.engine.connect() as conn:
        return [outbox_item_of(r) for r in await orm(conn, stmt)]


async def counts(store: Store) -> dict[str, int]:
    """Rows per table."""
    out: dict[str, int] = {}
    async with store.engine.connect() as conn:
        for t in TABLES:
            n = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            out[t.name] = int(n)
    return out


async def outbox_for(store: Store, dedup_key: str) -> list[OutboxItem]:
    """The outbox rows of one finding, in the order they were written."""
    stmt = select(OutboxRow).where(OutboxRow.dedup_key == dedup_key).order_by(OutboxRow.id)
    return await _outbox(store, stmt)


async def outbox_item(store: Store, outbox_id: int) -> OutboxItem | None:
    found = await _outbox(store, select(OutboxRow).where(OutboxRow.id == outbox_id))
    return found[0] if found else None


async def due_outbox(store: Store, sink: str, now: datetime) -> list[OutboxItem]:
    """The live rows of ``sink`` whose next attempt is due at ``now``, soonest due first."""
    stmt = (
        select(OutboxRow)
        .where(
            OutboxRow.sink == sink,
            OutboxRow.delivered_at.is_(None),
            OutboxRow.dead_at.is_(None),
            OutboxRow.next_attempt_at <= now,
        )
        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
    )
    return await _outbox(store, stmt)


async def backfills(store: Store, log: str | None = None) -> list[BackfillState]:
    """Every backfill (of ``log``, if given), by log, start and end."""
    stmt = select(BackfillRow).order_by(BackfillRow.log, BackfillRow.start, BackfillRow.end)
    if log is not None:
        stmt = stmt.where(BackfillRow.log == log)
    async with store.engine.connect() as conn:
        return [backfill_state(r) for r in await orm(conn, stmt)]


async def record_checkpoint(
    store: Store,
    log: str,
    checkpoint: CheckpointData,
    *,
    verified: bool,
    at: datetime | None = None,
) -> bool:
    """Keep a checkpoint as evidence, verified or not, as ``store_batch`` keeps its batch's
    (always verified), in a transaction of its own. True if it was new."""
    async with store._write() as conn:
        return await store._checkpoint(conn, log, checkpoint, verified, at or utcnow())
