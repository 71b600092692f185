"""Backfills: a range [start, end) of a log processed apart from the log's tailing cursor.
Where each stands is stored, so that a backfill resumes after a crash instead of starting
over; ``store_batch`` moves it forward (see ``Batch.backfill``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.errors import StorageError
from monitor.storage.base import BACKFILLS, StoreBase, orm, timed
from monitor.storage.logs_state import compact_range_state
from monitor.storage.models import BackfillRow, Log, clean_text
from monitor.tlog.merkle import CompactRangeState


@dataclass(frozen=True)
class BackfillState:
    """Where the backfill of [start, end) of ``log`` stands: ``cursor`` is the next index to
    process, ``checkpoint`` the raw signed note the range is being proven against."""

    log: str
    start: int
    end: int
    cursor: int
    checkpoint: str | None
    compact_range: CompactRangeState
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.cursor >= self.end


def _state(row: BackfillRow) -> BackfillState:
    return BackfillState(
        log=row.log,
        start=row.start,
        end=row.end,
        cursor=row.cursor,
        checkpoint=row.checkpoint,
        compact_range=compact_range_state(row.compact_size, row.compact_hashes),
        updated_at=row.updated_at,
    )


def check_span(span: tuple[int, int], cursor: int) -> None:
    """Refuse a range that cannot be a backfill, or a cursor before its start."""
    start, end = span
    if not 0 <= start <= end:
        raise StorageError(f"backfill range [{start}, {end}) is not a range of indices")
    if cursor < start:
        raise StorageError(f"backfill cursor {cursor} is before the range [{start}, {end})")


class BackfillsMixin(StoreBase):
    """``Store``: backfills (``store_batch`` writes them; this part reads them)."""

    @timed("backfills")
    async def backfill_state(self, log: str, start: int, end: int) -> BackfillState | None:
        stmt = select(BackfillRow).where(
            BackfillRow.log == log, BackfillRow.start == start, BackfillRow.end == end
        )
        async with self._read() as conn:
            rows = await orm(conn, stmt)
        return _state(rows[0]) if rows else None

    async def _advance_backfill(
        self,
        conn: AsyncConnection,
        log: str,
        span: tuple[int, int],
        *,
        cursor: int,
        checkpoint: str | None,
        compact_range: CompactRangeState | None,
        new_tree: bool = False,
        at: datetime,
    ) -> None:
        """Create the backfill's row if absent, then move it forward, never back: the cursor
        only grows, the checkpoint follows a cursor that is not behind, the compact range
        only grows (or, for ``new_tree``, follows a cursor that is not behind, as the log's
        does). The log's own state is not touched."""
        known = (await conn.execute(select(Log.name).where(Log.name == log))).first()
        if known is None:
            raise StorageError(f"unknown log {log!r}: register it first")
        start, end = span
        await self._insert_many(
            conn,
            BACKFILLS,
            [
                {
                    "log": log,
                    "start_idx": start,
                    "end_idx": end,
                    "cursor": start,
                    "checkpoint": None,
                    "compact_size": 0,
                    "compact_hashes": b"",
                    "updated_at": at,
                }
            ],
        )
        row = BackfillRow
        values: dict[str, Any] = {
            "cursor": case((row.cursor < cursor, cursor), else_=row.cursor),
            "updated_at": at,
        }
        if checkpoint is not None:
            values["checkpoint"] = case(
                (row.cursor <= cursor, clean_text(checkpoint)), else_=row.checkpoint
            )
        cr = compact_range
        if cr is not None:
            newer = row.cursor <= cursor if new_tree else row.compact_size <= cr.size
            values["compact_size"] = case((newer, cr.size), else_=row.compact_size)
            values["compact_hashes"] = case((newer, b"".join(cr.hashes)), else_=row.compact_hashes)
        await conn.execute(
            update(row).where(row.log == log, row.start == start, row.end == end).values(**values)
        )
