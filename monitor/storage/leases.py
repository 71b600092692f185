"""Leases: which replica leads each log when several run on one PostgreSQL database.

One row per log in ``log_leases``: the replica process that leads it (``holder``), until
when, and an ``epoch`` that rises whenever the lease is taken afresh. One row per running
replica in ``replicas``, its heartbeat. Every time is the database's (``clock_timestamp()``),
never a replica's, so that replicas whose clocks differ agree on who leads; what a replica is
told back is how many seconds are left, which it counts down on its own monotonic clock.

- A lease is taken only when it has run out (or was never taken), and only through
  ``FOR UPDATE SKIP LOCKED``: a replica never waits for another's transaction to take one.
- A batch commits only under its lease (``check_lease``, inside the batch's transaction): the
  row is read ``FOR SHARE``, so nobody can take the lease until the batch has committed, and
  a batch started under an older epoch, or after the lease ran out, is refused (fencing).

PostgreSQL only: on SQLite one monitor runs per database, and leads every log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.errors import LeaseLostError, StorageError
from monitor.storage.base import StoreBase, timed


@dataclass(frozen=True)
class Lease:
    """A lease this replica holds: on ``log``, as ``holder``, at ``epoch``; ``left`` seconds
    of it were left when the database answered."""

    log: str
    holder: str
    epoch: int
    since: datetime
    left: float


@dataclass(frozen=True)
class LeaseRow:
    """Who leads ``log`` (or led it: ``left`` is negative once the lease has run out)."""

    log: str
    holder: str
    replica: str
    epoch: int
    since: datetime
    left: float

    @property
    def live(self) -> bool:
        return self.left > 0


@dataclass(frozen=True)
class LiveReplica:
    """A replica whose heartbeat holds; ``age``: seconds since it started."""

    holder: str
    replica: str
    age: float


_HEARTBEAT = text(
    "INSERT INTO replicas (holder, replica, started_at, expires_at) "
    "VALUES (:holder, :replica, clock_timestamp(), "
    "clock_timestamp() + make_interval(secs => :ttl)) "
    "ON CONFLICT (holder) DO UPDATE SET expires_at = EXCLUDED.expires_at"
)
_LIVE = text(
    "SELECT holder, replica, EXTRACT(EPOCH FROM (clock_timestamp() - started_at))::float8 "
    "FROM replicas WHERE expires_at > clock_timestamp() ORDER BY holder"
)
# a day after its heartbeat ran out, a replica is forgotten (a crashed one leaves its row)
_FORGET = text("DELETE FROM replicas WHERE expires_at < clock_timestamp() - interval '1 day'")
_RENEW = text(
    "UPDATE log_leases SET expires_at = clock_timestamp() + make_interval(secs => :ttl) "
    "WHERE holder = :holder AND expires_at > clock_timestamp() RETURNING log, epoch, since, "
    "EXTRACT(EPOCH FROM (expires_at - clock_timestamp()))::float8"
)
_ENSURE = text(
    "INSERT INTO log_leases (log, holder, replica, epoch, since, expires_at) "
    "SELECT name, '', '', 0, clock_timestamp(), '-infinity' FROM unnest(CAST(:logs AS text[])) "
    "AS name ON CONFLICT (log) DO NOTHING"
)
_TAKE = text(
    "UPDATE log_leases SET holder = :holder, replica = :replica, epoch = epoch + 1, "
    "since = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => :ttl) "
    "WHERE log IN (SELECT log FROM log_leases WHERE log = ANY(CAST(:logs AS text[])) "
    "AND expires_at <= clock_timestamp() FOR UPDATE SKIP LOCKED) RETURNING log, epoch, since, "
    "EXTRACT(EPOCH FROM (expires_at - clock_timestamp()))::float8"
)
_RELEASE = text(
    "UPDATE log_leases SET expires_at = clock_timestamp() "
    "WHERE holder = :holder AND log = ANY(CAST(:logs AS text[]))"
)
_RELEASE_ALL = text("UPDATE log_leases SET expires_at = clock_timestamp() WHERE holder = :holder")
_LEAVE = text("DELETE FROM replicas WHERE holder = :holder")
_ROWS = text(
    "SELECT log, holder, replica, epoch, since, "
    "EXTRACT(EPOCH FROM (expires_at - clock_timestamp()))::float8 FROM log_leases "
    "WHERE holder <> '' ORDER BY log"
)
_CHECK = text(
    "SELECT 1 FROM log_leases WHERE log = :log AND holder = :holder AND epoch = :epoch "
    "AND expires_at > clock_timestamp() FOR SHARE"
)


class LeasesMixin(StoreBase):
    """``Store``: the leases of the logs and the replicas' heartbeats."""

    def _postgresql_only(self) -> None:
        if self._dialect != "postgresql":
            raise StorageError("several replicas need PostgreSQL: SQLite is for one monitor")

    @timed("lease_heartbeat")
    async def heartbeat(self, holder: str, replica: str, ttl: float) -> list[LiveReplica]:
        """Say this replica is alive for ``ttl`` seconds more; the replicas alive now."""
        self._postgresql_only()
        async with self._write() as conn:
            await conn.execute(_HEARTBEAT, {"holder": holder, "replica": replica, "ttl": ttl})
            await conn.execute(_FORGET)
            rows = (await conn.execute(_LIVE)).all()
        return [LiveReplica(str(h), str(r), float(a)) for h, r, a in rows]

    @timed("lease_renew")
    async def renew_leases(self, holder: str, ttl: float) -> list[Lease]:
        """Extend every lease ``holder`` still holds by ``ttl`` seconds from now; those."""
        self._postgresql_only()
        async with self._write() as conn:
            rows = (await conn.execute(_RENEW, {"holder": holder, "ttl": ttl})).all()
        return [Lease(str(log), holder, int(e), s, float(left)) for log, e, s, left in rows]

    @timed("lease_take")
    async def take_leases(
        self, logs: Sequence[str], holder: str, replica: str, ttl: float
    ) -> list[Lease]:
        """Take the leases of ``logs`` that have run out (or were never taken) and that no
        other replica is taking at this moment; those taken, each at a new epoch."""
        self._postgresql_only()
        if not logs:
            return []
        params = {"logs": list(logs), "holder": holder, "replica": replica, "ttl": ttl}
        async with self._write() as conn:
            await conn.execute(_ENSURE, params)
            rows = (await conn.execute(_TAKE, params)).all()
        return [Lease(str(log), holder, int(e), s, float(left)) for log, e, s, left in rows]

    @timed("lease_release")
    async def release_leases(self, holder: str, logs: Sequence[str] | None = None) -> None:
        """End ``holder``'s leases of ``logs`` (None: all) now, so that another replica
        takes them at once rather than when they run out."""
        self._postgresql_only()
        async with self._write() as conn:
            if logs is None:
                await conn.execute(_RELEASE_ALL, {"holder": holder})
            elif logs:
                await conn.execute(_RELEASE, {"holder": holder, "logs": list(logs)})

    async def leave(self, holder: str) -> None:
        """A replica that stops: its leases end and its heartbeat row goes."""
        self._postgresql_only()
        async with self._write() as conn:
            await conn.execute(_RELEASE_ALL, {"holder": holder})
            await conn.execute(_LEAVE, {"holder": holder})

    @timed("lease_read")
    async def lease_rows(self) -> list[LeaseRow]:
        """Every log's lease, run out or not (a log never led has none)."""
        if self._dialect != "postgresql":
            return []
        async with self._read() as conn:
            rows = (await conn.execute(_ROWS)).all()
        return [
            LeaseRow(str(log), str(h), str(r), int(e), s, float(left))
            for log, h, r, e, s, left in rows
        ]

    async def _check_lease(self, conn: AsyncConnection, lease: Lease) -> None:
        """Inside a batch's transaction: refuse it unless ``lease`` still holds, and keep
        anyone from taking the lease until the transaction ends."""
        params = {"log": lease.log, "holder": lease.holder, "epoch": lease.epoch}
        if (await conn.execute(_CHECK, params)).first() is None:
            raise LeaseLostError(
                lease.log,
                f"the lease of {lease.log} (epoch {lease.epoch}) ran out or was taken by "
                "another replica: batch refused",
            )
