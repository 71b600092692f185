"""Leadership of the logs over several replicas (``ha:``): which logs this replica tails.

Every third of ``lease_ttl`` the replica, on the database's clock (``monitor.storage.leases``):

1. says it is alive (its heartbeat), and learns which replicas are;
2. renews the leases it holds; one it no longer holds (it ran out, another took it) is lost;
3. takes the leases that have run out (or were never taken) of the logs it should lead: each
   log goes to one live replica by rendezvous hashing, so that logs spread evenly and move
   as little as possible when replicas come and go; a log whose lease has been out for a
   third of ``lease_ttl`` may be taken by anyone (its preferred replica may be dead too);
4. hands over (releases) a log it holds whose preferred replica has been alive for a whole
   ``lease_ttl``: a replica that joins gets its share once it has shown it stays.

It wakes early when a lease it could take is about to run out, so that a dead replica's logs
are taken over as soon as its leases end. Locally, each lease is counted down on the monotonic
clock from what the database said was left: a replica that cannot renew (the database is
unreachable, the process was paused) stops tailing the log before its lease can run out, and a
renewal that fails stops every log at once. Whatever the local view, a batch commits only
under a lease that still holds (fencing, checked in the batch's transaction).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from monitor.config.ha import HaSettings
from monitor.core.aio import wait_any
from monitor.core.errors import LeaseLostError, MonitorError
from monitor.core.metrics import DaemonMetrics
from monitor.core.status import Leader
from monitor.storage.engine import IDLE_IN_TRANSACTION_TIMEOUT
from monitor.storage.leases import Lease, LeaseRow, LiveReplica
from monitor.storage.lock import Holder
from monitor.storage.ports import LeaseStore

__all__ = ["Leadership", "SoleLeader", "idle_timeout", "leadership_for", "preferred"]

log = logging.getLogger("monitor.leadership")

# a lease is given up locally this long before it would run out, so that a batch in flight
# is refused by the lease check rather than racing the successor's first one
SAFETY = 0.1
WAKE_AFTER_EXPIRY = 0.05  # seconds past a lease's end before trying to take it
EVICTED_RETRY = 0.2  # seconds after ending a stuck holder's sessions before taking its lease


def preferred(log_name: str, replicas: Collection[str]) -> str | None:
    """The replica (by holder name) that should lead ``log_name``: rendezvous hashing, the
    highest hash of (replica, log) wins."""

    def weight(holder: str) -> bytes:
        return hashlib.sha256(f"{holder}\x00{log_name}".encode()).digest()

    return max(replicas, key=weight, default=None)


@dataclass(frozen=True)
class Held:
    lease: Lease
    until: float  # monotonic time the lease is given up locally


class Leadership:
    """The logs this replica leads, kept current by ``run``. ``gained(log, lease)`` is told
    when it starts leading a log, ``lost(log, reason)`` when it stops (it must stop writing
    the log at once)."""

    def __init__(
        self,
        store: LeaseStore,
        holder: str,
        replica: str,
        ttl: float,
        logs: Callable[[], Sequence[str]],
        *,
        gained: Callable[[str, Lease | None], None],
        lost: Callable[[str, str], None],
        metrics: DaemonMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.holder = holder
        self.replica = replica
        self.ttl = ttl
        self.every = ttl / 3
        self.logs = logs
        self._gained = gained
        self._lost = lost
        self.metrics = metrics
        self.clock = clock
        self.held: dict[str, Held] = {}
        self.live: list[LiveReplica] = []
        self.rows: dict[str, LeaseRow] = {}  # every log's lease as last read
        # logs handed over: their tailers were stopped, their leases end at the next round
        # (by then a batch in flight has committed, rather than being refused)
        self._handing: list[str] = []
        self._wake = asyncio.Event()

    # -- what others ask ---------------------------------------------------------------------

    def lease(self, log_name: str) -> Lease:
        """The lease this replica leads ``log_name`` under; ``LeaseLostError`` when it does
        not lead it (nothing of the log may be written then)."""
        held = self.held.get(log_name)
        if held is None or held.until <= self.clock():
            row = self.rows.get(log_name)
            who = f"replica {row.replica}" if row is not None and row.live else "another replica"
            raise LeaseLostError(log_name, f"{log_name} is led by {who}, not this one")
        return held.lease

    def leads(self, log_name: str) -> bool:
        """Whether this replica leads ``log_name`` now: a lease that ran out on the local
        clock (the process was paused) is not led, even before the next round notices."""
        held = self.held.get(log_name)
        return held is not None and held.until > self.clock()

    def added(self) -> None:
        """Logs were added (new shards): look for their leases now."""
        self._wake.set()

    def check(self) -> None:
        """A write failed on the database: renew now, and step down at once if that fails
        too (rather than at the next round)."""
        self._wake.set()

    async def leaders(self) -> dict[str, Leader]:
        """Who leads each log now, as the database says (a lease that ran out: nobody)."""
        rows = await self.store.lease_rows()
        return {r.log: Leader(r.replica, r.since) for r in rows if r.live}

    def fenced(self, log_name: str, epoch: int | None) -> None:
        """A batch of ``log_name`` under the lease of ``epoch`` was refused: that lease is
        gone, whatever the local view. (A batch refused after this replica stepped down,
        handing the log over, or that it has since led again afresh, is not counted.)"""
        held = self.held.get(log_name)
        if held is None or held.lease.epoch != epoch:
            return
        if self.metrics is not None:
            self.metrics.fenced.labels(log_name).inc()
        self._drop(log_name, "a batch was refused: the lease ran out or was taken")
        self._wake.set()

    @asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """One pass of every log (``once``): take the leases that nobody holds, keep them
        renewed meanwhile, end them after. A log another replica leads is left to it."""
        started = self.clock()
        self.live = await self.store.heartbeat(self.holder, self.replica, self.ttl)
        for lease in await self.store.take_leases(self.logs(), self.holder, self.replica, self.ttl):
            self._hold(lease, started)
        self.rows = {r.log: r for r in await self.store.lease_rows()}
        stop = asyncio.Event()
        keeping = asyncio.create_task(self._keep(stop), name="leases")
        try:
            yield
        finally:
            stop.set()
            await keeping
            self._drop_all("done")
            await self.store.leave(self.holder)

    async def _keep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_any([stop], self.every)
            if stop.is_set():
                return
            try:
                await self._renew(self.clock())
            except MonitorError as e:
                self._drop_all(f"the database did not answer: {e}")

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Keep leadership current until ``stop``; then end every lease this replica holds
        (its successors take them at once) and leave."""
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    delay = await self.tick()
                except MonitorError as e:
                    self._drop_all(f"the database did not answer: {e}")
                    delay = min(1.0, self.every)
                except Exception:  # a bug: never lead on without renewing
                    log.exception("leadership round crashed; stepping down and retrying")
                    self._drop_all("the leadership round crashed")
                    delay = min(1.0, self.every)
                await wait_any([stop, self._wake], delay)
        finally:
            self._drop_all("stopping")
            try:
                await self.store.leave(self.holder)
            except MonitorError as e:
                log.warning("could not release the leases: %s; they run out by themselves", e)

    async def tick(self) -> float:
        """One round (see the module docstring); seconds until the next."""
        started = self.clock()
        self.live = await self.store.heartbeat(self.holder, self.replica, self.ttl)
        if self._handing:
            await self.store.release_leases(self.holder, self._handing)
            self._handing = []
        await self._renew(started)
        self.rows = {r.log: r for r in await self.store.lease_rows()}
        wanted = self._wanted()
        evicted = False
        if wanted:
            for lease in await self.store.take_leases(wanted, self.holder, self.replica, self.ttl):
                self._hold(lease, started)
            evicted = await self._evict_stuck(wanted)
        self._hand_over()
        self._expire_local()
        for name in self.logs():
            if name not in self.held:
                self._report(name, False)  # a log known and not led shows as such
        return min(self._next_delay(), EVICTED_RETRY) if evicted else self._next_delay()

    async def _renew(self, started: float) -> None:
        """Renew every lease this replica holds (asked at ``started``); one it no longer
        holds is lost, one the database still gives it (after a blip: not renewed locally,
        renewed there) is led again."""
        renewals = await self.store.renew_leases(self.holder, self.ttl)
        kept = {lease.log for lease in renewals}
        for name in [n for n in self.held if n not in kept]:
            self._drop(name, "the lease ran out or was taken by another replica")
        for lease in renewals:
            self._hold(lease, started)

    async def _evict_stuck(self, wanted: Sequence[str]) -> bool:
        """A lease that ran out more than a round ago, that this replica wanted and could
        not take (its row is locked), of a holder whose heartbeat has ended: that holder is
        stuck inside a write (paused mid-statement). End its sessions, so that its
        transaction rolls back and its locks go; the lease is taken at the next round."""
        beating = {r.holder for r in self.live}
        stuck = {
            row.holder
            for name in wanted
            if name not in self.held
            and (row := self.rows.get(name)) is not None
            and -row.left > self.every
            and row.holder not in beating
        }
        for holder in sorted(stuck):
            ended = await self.store.evict(holder)
            log.warning(
                "ended the sessions of a replica that holds an expired lease and no longer "
                "beats (paused inside a write)",
                extra={"fields": {"holder": holder, "sessions": ended, "replica": self.replica}},
            )
        return bool(stuck)

    def _wanted(self) -> list[str]:
        """The logs not led by anyone that this replica should take now."""
        holders = [r.holder for r in self.live]
        out = []
        for name in self.logs():
            if name in self.held:
                continue
            row = self.rows.get(name)
            if row is not None and row.live:
                continue
            overdue = row is not None and -row.left > self.every
            if overdue or preferred(name, holders) in (self.holder, None):
                out.append(name)
        return out

    def _hand_over(self) -> None:
        """Hand over the logs whose preferred replica has been alive for a whole lease."""
        settled = [r.holder for r in self.live if r.age >= self.ttl or r.holder == self.holder]
        if len(settled) < 2:
            return
        going = [n for n in self.held if preferred(n, settled) not in (self.holder, None)]
        if not going:
            return
        for name in going:
            self._drop(name, f"handed over to {self._replica_of(preferred(name, settled))}")
        self._handing = going

    def _replica_of(self, holder: str | None) -> str:
        return next((r.replica for r in self.live if r.holder == holder), str(holder))

    def _next_delay(self) -> float:
        """The next renewal, or sooner: right after a lease this replica may take runs out."""
        delay = self.every
        if self._handing:
            delay = min(delay, 0.5)  # a batch commits well within it: hand over soon
        holders = [r.holder for r in self.live]
        for name, row in self.rows.items():
            if name in self.held or not row.live:
                continue
            mine = preferred(name, holders) == self.holder
            ends = row.left + (0.0 if mine else self.every)
            delay = min(delay, max(ends + WAKE_AFTER_EXPIRY, 0.0))
        for held in self.held.values():
            delay = min(delay, max(held.until - self.clock(), 0.0))
        return delay

    # -- local state -------------------------------------------------------------------------

    def _hold(self, lease: Lease, asked_at: float) -> None:
        """Lead ``lease.log`` until what was left of the lease when it was asked, less a
        margin: the database's answer may have taken a while to arrive."""
        until = asked_at + lease.left - SAFETY
        known = self.held.get(lease.log)
        self.held[lease.log] = Held(lease, until)
        if known is not None and known.lease.epoch == lease.epoch:
            return
        if known is not None:  # taken again after it ran out: a new epoch, a new start
            self._report(lease.log, False, changed=True)
            self._lost(lease.log, "the lease ran out")
        self._report(lease.log, True, changed=True)
        log.info(
            "leadership gained",
            extra={"fields": self._fields(lease.log, lease.epoch, "lease taken")},
        )
        self._gained(lease.log, lease)

    def _expire_local(self) -> None:
        now = self.clock()
        for name, held in list(self.held.items()):
            if held.until <= now:
                self._drop(name, "the lease was not renewed in time")

    def _drop(self, name: str, reason: str) -> None:
        held = self.held.pop(name, None)
        if held is None:
            return
        self._report(name, False, changed=True)
        log.warning(
            "leadership lost",
            extra={"fields": self._fields(name, held.lease.epoch, reason)},
        )
        self._lost(name, reason)

    def _drop_all(self, reason: str) -> None:
        for name in list(self.held):
            self._drop(name, reason)

    def _report(self, name: str, leading: bool, *, changed: bool = False) -> None:
        if self.metrics is not None:
            self.metrics.leads(name, self.replica, leading, changed=changed)

    def _fields(self, name: str, epoch: int, reason: str) -> dict[str, object]:
        return {"log": name, "replica": self.replica, "epoch": epoch, "reason": reason}


class SoleLeader:
    """A monitor without ``ha:``: the only one on its database (it holds the database's
    lock), it leads every log from the start, and every log added later."""

    def __init__(
        self,
        replica: str,
        logs: Callable[[], Sequence[str]],
        *,
        gained: Callable[[str, Lease | None], None],
        metrics: DaemonMetrics | None = None,
    ) -> None:
        self.replica = replica
        self.logs = logs
        self._gained = gained
        self.metrics = metrics
        self.since = datetime.now(UTC)
        self.led: dict[str, datetime] = {}

    def lease(self, log_name: str) -> Lease | None:
        return None  # no lease to hold: the database's lock is the fence

    def leads(self, log_name: str) -> bool:
        return log_name in self.led

    def fenced(self, log_name: str, epoch: int | None) -> None:
        """Never: a sole leader's batches carry no lease."""

    def check(self) -> None:
        """Nothing to renew: the database's lock is held for the life of the process."""

    @asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """One pass of every log (``once``): they are all this monitor's."""
        self.added()
        yield

    def added(self) -> None:
        """Logs were added (new shards): lead them at once."""
        for name in self.logs():
            if name not in self.led:
                self.led[name] = datetime.now(UTC)
                if self.metrics is not None:
                    self.metrics.leads(name, self.replica, True, changed=True)
                self._gained(name, None)

    async def leaders(self) -> dict[str, Leader]:
        return {name: Leader(self.replica, since) for name, since in self.led.items()}

    async def run(self, stop: asyncio.Event) -> None:
        self.added()
        await stop.wait()


class ReplicaStore(LeaseStore, Protocol):
    """The store of a replica: its leases, and who it is."""

    @property
    def holder(self) -> Holder: ...


def leadership_for(
    ha: HaSettings | None,
    store: ReplicaStore,
    logs: Callable[[], Sequence[str]],
    *,
    gained: Callable[[str, Lease | None], None],
    lost: Callable[[str, str], None],
    metrics: DaemonMetrics | None = None,
) -> Leadership | SoleLeader:
    """Who decides which logs this process tails: the leases (``ha:``), or nobody (the only
    monitor on the database leads them all)."""
    if ha is None:
        return SoleLeader(store.holder.host, logs, gained=gained, metrics=metrics)
    ttl = ha.lease_ttl.total_seconds()
    return Leadership(
        store,
        store.holder.name,
        ha.replica_id,
        ttl,
        logs,
        gained=gained,
        lost=lost,
        metrics=metrics,
    )


def idle_timeout(ha: HaSettings | None) -> float:
    """How long a session may sit idle inside a transaction: a replica paused mid-batch holds
    its lease row and the log's row until the server ends its session, so with several
    replicas that is at most a lease, and a takeover waits no longer than the lease."""
    if ha is None:
        return IDLE_IN_TRANSACTION_TIMEOUT
    return max(1.0, min(IDLE_IN_TRANSACTION_TIMEOUT, ha.lease_ttl.total_seconds()))
