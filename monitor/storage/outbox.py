"""The alert outbox: due rows, delivery attempts, dead letters and their replay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.errors import StorageError
from monitor.core.findings import FindingState
from monitor.storage.base import ATTEMPTS, JSON, OUTBOX, StoreBase, orm, timed, utcnow
from monitor.storage.findings_store import change_state, stored_finding
from monitor.storage.models import DeliveryAttempt, FindingRow, OutboxRow, Replica
from monitor.storage.paging import page_limit

TRIGGER, RESOLVE = "trigger", "resolve"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    dedup_key: str
    sink: str
    payload: JSON
    event: str  # trigger or resolve
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    # the webhook-id it was first claimed under (None: never claimed); it is sent under that
    # id, with the other rows that carry it, whoever sends it again
    message_id: str | None = None

    def claimed_by_other(self, holder: str, now: datetime) -> bool:
        """Another process holds a live claim on the row (it is posting it now)."""
        return (
            self.claimed_by not in (None, holder)
            and self.claimed_until is not None
            and self.claimed_until > now
        )


@dataclass(frozen=True)
class Attempt:
    outbox_id: int
    at: datetime
    status: str  # delivered, failed, dead
    error: str | None
    duration: float


def _outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        dedup_key=row.dedup_key,
        sink=row.sink,
        payload=row.payload,
        event=row.event,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        attempts=row.attempts,
        delivered_at=row.delivered_at,
        dead_at=row.dead_at,
        last_error=row.last_error,
        claimed_by=row.claimed_by,
        claimed_until=row.claimed_until,
        message_id=row.message_id,
    )


# a row still to send: neither delivered nor dead-lettered
_LIVE = (OutboxRow.delivered_at.is_(None), OutboxRow.dead_at.is_(None))


class _NotAllFree(Exception):
    """Raised inside a claim's transaction to roll it back."""


class OutboxMixin(StoreBase):
    """``Store``: the outbox."""

    replicated: bool = False
    """Several replicas share the database (``ha:``): an outbox claim whose holder has no live
    heartbeat in ``replicas`` is a dead replica's, free to take at once. Set by ``Store.open``."""

    @timed("outbox_due")
    async def pending_outbox(
        self, sink: str, limit: int = 100, *, message_id: str | None = None
    ) -> list[OutboxItem]:
        """Undelivered, live rows of ``sink`` in the order they were written, due or not: a
        sink hears of findings in order, so a row waiting for its retry holds back the rest.
        ``message_id``: only the rows claimed under it (the rest of a message to send again)."""
        stmt = (
            select(OutboxRow)
            .where(
                OutboxRow.sink == sink,
                *_LIVE,
            )
            .order_by(OutboxRow.id)
            .limit(page_limit(limit))
        )
        if message_id is not None:
            stmt = stmt.where(OutboxRow.message_id == message_id)
        async with self._read() as conn:
            return [_outbox(r) for r in await orm(conn, stmt)]

    async def claim_outbox(
        self,
        ids: Sequence[int],
        holder: str,
        *,
        now: datetime,
        until: datetime,
        take_over: bool = False,
        message_id: str | None = None,
        dead_holders_free: bool = False,
    ) -> bool:
        """Claim the live, undelivered rows ``ids`` for ``holder`` until ``until``, all or none:
        True if every one was free (unclaimed, claimed by ``holder``, or a claim that expired).
        Only the claimant posts a row, so two processes never deliver it both; a claim whose
        holder died expires, and the row is delivered again with the same message id.
        ``take_over``: other holders' claims are taken too (the caller holds the database's
        lock, so they are dead processes': a restart need not wait for them to expire).
        ``message_id``: the webhook-id the rows are posted under, recorded on those that have
        none; a row that already carries another refuses the claim (it belongs to another
        message, which is sent again as it was). ``dead_holders_free``: a claim whose holder
        is not a live replica (no unexpired heartbeat, by the database's clock) is free."""
        if not ids:
            return True
        free = or_(
            OutboxRow.claimed_until.is_(None),
            OutboxRow.claimed_until <= now,
            OutboxRow.claimed_by == holder,
            literal(take_over),
        )
        if dead_holders_free:
            live = select(Replica.holder).where(Replica.expires_at > self._db_now(now))
            free = or_(free, OutboxRow.claimed_by.not_in(live))
        where = [OutboxRow.id.in_(list(ids)), *_LIVE, free]
        values: dict[str, Any] = {"claimed_by": holder, "claimed_until": until}
        if message_id is not None:
            where.append(or_(OutboxRow.message_id.is_(None), OutboxRow.message_id == message_id))
            values["message_id"] = func.coalesce(OutboxRow.message_id, message_id)
        try:
            async with self._write() as conn:
                result = await conn.execute(update(OutboxRow).where(*where).values(**values))
                if result.rowcount != len(set(ids)):
                    raise _NotAllFree
        except _NotAllFree:
            return False  # the transaction rolled back: nothing of the group is claimed
        return True

    @timed("outbox_read")
    async def live_holder(self, holder: str, *, now: datetime | None = None) -> bool:
        """``holder`` is a live replica: its heartbeat in ``replicas`` has not expired (by the
        database's clock on PostgreSQL: replicas' clocks may differ; ``now`` on SQLite)."""
        stmt = select(func.count()).where(
            Replica.holder == holder, Replica.expires_at > self._db_now(now or utcnow())
        )
        async with self._read() as conn:
            return int((await conn.execute(stmt)).scalar_one()) > 0

    def _db_now(self, now: datetime) -> ColumnElement[datetime] | datetime:
        """The time a heartbeat is compared with: the server's on PostgreSQL (every replica
        reads the same clock), the caller's on SQLite (one host)."""
        if self._dialect == "postgresql":
            return func.clock_timestamp()
        return now

    @timed("finding_update")
    async def resolve_finding(
        self, finding_id: int, who: str, comment: str | None = None, *, at: datetime | None = None
    ) -> bool:
        """Resolve an open or acknowledged finding and, in the same transaction, queue a
        resolve message for every sink that was sent (or is to be sent) its trigger. False if
        there is no such finding or it was resolved already."""
        when = at or utcnow()
        async with self._write() as conn:
            resolved = await change_state(
                conn,
                finding_id,
                FindingState.RESOLVED,
                who=who,
                comment=comment,
                at=when,
                unless_resolved=True,
            )
            if not resolved:
                return False
            (row,) = await orm(conn, select(FindingRow).where(FindingRow.id == finding_id))
            sinks = (
                await conn.execute(
                    select(OutboxRow.sink).where(
                        OutboxRow.dedup_key == row.dedup_key, OutboxRow.event == TRIGGER
                    )
                )
            ).scalars()
            payload = stored_finding(row).to_json()
            self._queuing = True
            await self._insert_many(
                conn,
                OUTBOX,
                [
                    {
                        "dedup_key": row.dedup_key,
                        "sink": sink,
                        "event": RESOLVE,
                        "payload": payload,
                        "created_at": when,
                        "next_attempt_at": when,
                        "attempts": 0,
                    }
                    for sink in sorted(set(sinks))
                ],
            )
        return True

    @timed("outbox_active")
    async def active_alerts(self, sink: str, limit: int = 1000) -> list[JSON]:
        """The findings ``sink`` was told of (trigger delivered) that are not resolved, as
        they are now: what an Alertmanager must be reminded of before its alerts expire."""
        stmt = (
            select(FindingRow)
            .join(OutboxRow, OutboxRow.dedup_key == FindingRow.dedup_key)
            .where(
                OutboxRow.sink == sink,
                OutboxRow.event == TRIGGER,
                OutboxRow.delivered_at.is_not(None),
                FindingRow.state != str(FindingState.RESOLVED),
            )
            .order_by(FindingRow.id)
            .limit(page_limit(limit))
        )
        async with self._read() as conn:
            return [stored_finding(r).to_json() for r in await orm(conn, stmt)]

    @timed("outbox_backlog")
    async def oldest_undelivered(self, sink: str) -> datetime | None:
        """When the oldest live, undelivered row of ``sink`` was written (None: none wait).
        How long alerts have been waiting is what tells a failing sink from a quiet one."""
        stmt = select(func.min(OutboxRow.created_at)).where(
            OutboxRow.sink == sink,
            *_LIVE,
        )
        async with self._read() as conn:
            value: datetime | None = (await conn.execute(stmt)).scalar_one()
        return value

    async def _attempt(
        self,
        conn: AsyncConnection,
        outbox_id: int,
        *,
        at: datetime,
        status: str,
        error: str | None,
        duration: float,
        **changes: Any,
    ) -> None:
        result = await conn.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(attempts=OutboxRow.attempts + 1, claimed_by=None, claimed_until=None, **changes)
        )
        if result.rowcount != 1:
            raise StorageError(f"no outbox row {outbox_id}")
        await conn.execute(
            ATTEMPTS.insert().values(
                outbox_id=outbox_id, at=at, status=status, error=error, duration=duration
            )
        )

    @timed("outbox_mark")
    async def mark_delivered(self, outbox_id: int, *, at: datetime, duration: float) -> None:
        """The sink accepted the alert: record the attempt and stop delivering it."""
        await self._delivered([outbox_id], at, duration)

    @timed("outbox_mark")
    async def mark_message_delivered(
        self, outbox_ids: Sequence[int], *, at: datetime, duration: float
    ) -> None:
        """The sink accepted a message: every row it carried is delivered, in one transaction.
        A process that dies on the way leaves none of them marked, never part of the message
        (which would go out again as a smaller one, its body's idempotency key changed)."""
        await self._delivered(outbox_ids, at, duration)

    async def _delivered(self, outbox_ids: Sequence[int], at: datetime, duration: float) -> None:
        async with self._write() as conn:
            for outbox_id in outbox_ids:
                await self._attempt(
                    conn,
                    outbox_id,
                    at=at,
                    status="delivered",
                    error=None,
                    duration=duration,
                    delivered_at=at,
                )

    @timed("outbox_mark")
    async def record_attempt(
        self,
        outbox_id: int,
        *,
        at: datetime,
        error: str,
        duration: float,
        retry_at: datetime | None,
    ) -> None:
        """A failed delivery: retry at ``retry_at``, or dead-letter the row when None."""
        async with self._write() as conn:
            if retry_at is None:
                await self._attempt(
                    conn,
                    outbox_id,
                    at=at,
                    status="dead",
                    error=error,
                    duration=duration,
                    dead_at=at,
                    last_error=error,
                )
            else:
                await self._attempt(
                    conn,
                    outbox_id,
                    at=at,
                    status="failed",
                    error=error,
                    duration=duration,
                    next_attempt_at=retry_at,
                    last_error=error,
                )

    @timed("outbox_read")
    async def attempts(self, outbox_id: int) -> list[Attempt]:
        t = DeliveryAttempt
        stmt = select(t).where(t.outbox_id == outbox_id).order_by(t.at, t.id)
        async with self._read() as conn:
            return [
                Attempt(r.outbox_id, r.at, r.status, r.error, r.duration)
                for r in await orm(conn, stmt)
            ]

    @timed("outbox_read")
    async def deliveries(self, dedup_key: str, limit: int = 100) -> list[OutboxItem]:
        """The outbox rows of one finding (each sink's trigger, then its resolve), oldest
        first: what was sent about it, where, and how it went."""
        stmt = (
            select(OutboxRow)
            .where(OutboxRow.dedup_key == dedup_key)
            .order_by(OutboxRow.id)
            .limit(page_limit(limit))
        )
        async with self._read() as conn:
            return [_outbox(r) for r in await orm(conn, stmt)]

    @timed("outbox_read")
    async def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[OutboxItem]:
        """Rows that gave up, most recent first."""
        stmt = select(OutboxRow).where(OutboxRow.dead_at.is_not(None))
        if sink is not None:
            stmt = stmt.where(OutboxRow.sink == sink)
        stmt = stmt.order_by(OutboxRow.dead_at.desc(), OutboxRow.id.desc()).limit(page_limit(limit))
        async with self._read() as conn:
            return [_outbox(r) for r in await orm(conn, stmt)]

    @timed("outbox_mark")
    async def replay(self, outbox_id: int, *, now: datetime | None = None) -> bool:
        """Bring a dead letter back: due at once, attempts counted from zero, and a message of
        its own (its message id is forgotten). False if the row is not a dead letter.

        Why not the old id: the rest of its message may have gone out under it meanwhile (the
        head of a group dies of old age, the others are retried and delivered), or be replayed
        one by one later; a receiver that took that id would drop this row as a repeat, and
        the finding would be lost. The new id is derived from the findings it goes out with,
        so a row replayed with the same companions gets the same id again, and every payload
        still names the finding's dedup key."""
        async with self._write() as conn:
            result = await conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == outbox_id, OutboxRow.dead_at.is_not(None))
                .values(dead_at=None, next_attempt_at=now or utcnow(), attempts=0, message_id=None)
            )
            return result.rowcount == 1
