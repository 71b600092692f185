"""Leases on a real PostgreSQL server: a lease is taken only when it has run out, renewed
only by its holder while it holds, taken afresh at a higher epoch; a batch commits only under
a lease that holds (fencing); replicas share the database lock and refuse a single monitor
beside them, and it them. And ``Leadership`` over it: logs spread over replicas, taken over
when a replica dies, handed over when one joins."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.config.ha import HaSettings
from monitor.core.errors import LeaseLostError, StorageError
from monitor.daemon.leadership import Leadership, idle_timeout, preferred
from monitor.storage import Batch
from monitor.storage import engine as engines
from monitor.storage.leases import Lease
from monitor.storage.lock import DatabaseInUseError, Holder
from monitor.storage.store import Store
from tests.storage_support import (
    PgDatabases,
    cert_record,
    pg_databases_fixture,
    require_postgres,
    run,
    sqlite_url,
)

pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)

LOGS = ["log-a", "log-b", "log-c", "log-d", "log-e", "log-f"]


@pytest.fixture
def url(pg_dbs: PgDatabases) -> str:
    require_postgres()
    return pg_dbs.create()


async def registered(url: str, holder: str = "r1") -> Store:
    store = await Store.open(url, holder=Holder.this_process(holder))
    for name in LOGS:
        await store.register_log(name, "v2", f"https://{name}.example")
    return store


def test_a_lease_is_taken_once_renewed_by_its_holder_and_taken_afresh_when_it_runs_out(
    url: str,
) -> None:
    async def body() -> None:
        store = await registered(url)
        try:
            (a,) = await store.take_leases(["log-a"], "A", "ra", 0.6)
            assert (a.log, a.holder, a.epoch) == ("log-a", "A", 1)
            assert 0.3 < a.left <= 0.6
            assert await store.take_leases(["log-a"], "B", "rb", 5.0) == []  # A holds it
            (renewed,) = await store.renew_leases("A", 0.6)
            assert renewed.epoch == 1  # a renewal keeps the epoch
            assert await store.renew_leases("B", 5.0) == []  # B holds nothing
            rows = {r.log: r for r in await store.lease_rows()}
            assert rows["log-a"].replica == "ra"
            assert rows["log-a"].live
            await asyncio.sleep(0.7)
            assert await store.renew_leases("A", 0.6) == []  # ran out: not renewed
            (b,) = await store.take_leases(["log-a"], "B", "rb", 5.0)
            assert (b.holder, b.epoch) == ("B", 2)
            # A, waking, cannot take it back while B holds it
            assert await store.take_leases(["log-a"], "A", "ra", 5.0) == []
            await store.release_leases("B", ["log-a"])
            (again,) = await store.take_leases(["log-a"], "A", "ra", 5.0)
            assert again.epoch == 3  # released: taken at once, afresh
        finally:
            await store.close()

    run(body)


def test_a_batch_commits_only_under_a_lease_that_holds(url: str) -> None:
    async def body() -> None:
        store = await registered(url)
        try:
            (old,) = await store.take_leases(["log-a"], "A", "ra", 0.5)
            record = cert_record("log-a", 0)
            await store.store_batch(Batch("log-a", 1, records=(record,), lease=old))
            await asyncio.sleep(0.6)  # A pauses past its lease; B takes the log
            (new,) = await store.take_leases(["log-a"], "B", "rb", 5.0)
            late = Batch("log-a", 2, records=(cert_record("log-a", 1),))
            with pytest.raises(LeaseLostError):
                await store.store_batch(
                    Batch(late.log, late.cursor, records=late.records, lease=old)
                )
            state = await store.log_state("log-a")
            assert state is not None
            assert state.cursor == 1  # nothing of it was stored
            stale = Lease("log-a", "A", new.epoch, new.since, 5.0)  # right epoch, wrong holder
            with pytest.raises(LeaseLostError):
                await store.store_batch(Batch("log-a", 2, lease=stale))
            await store.store_batch(Batch(late.log, late.cursor, records=late.records, lease=new))
            state = await store.log_state("log-a")
            assert state is not None
            assert state.cursor == 2
            with pytest.raises(StorageError):  # a lease of another log
                await store.store_batch(Batch("log-b", 1, lease=new))
        finally:
            await store.close()

    run(body)


def test_heartbeats_say_who_is_alive_and_a_replica_that_leaves_ends_its_leases(url: str) -> None:
    async def body() -> None:
        store = await registered(url)
        try:
            await store.heartbeat("A", "ra", 5.0)
            live = await store.heartbeat("B", "rb", 0.3)
            assert [(r.holder, r.replica) for r in live] == [("A", "ra"), ("B", "rb")]
            await asyncio.sleep(0.4)
            assert [r.holder for r in await store.heartbeat("A", "ra", 5.0)] == ["A"]
            await store.take_leases(["log-a", "log-b"], "A", "ra", 5.0)
            await store.leave("A")
            assert all(not r.live for r in await store.lease_rows())
            assert [r.holder for r in await store.heartbeat("C", "rc", 5.0)] == ["C"]
        finally:
            await store.close()

    run(body)


def test_sqlite_has_no_leases(tmp_path: Path) -> None:
    async def body() -> None:
        store = await Store.open(sqlite_url(tmp_path))
        try:
            with pytest.raises(StorageError, match="PostgreSQL"):
                await store.heartbeat("A", "ra", 5.0)
            assert await store.lease_rows() == []
        finally:
            await store.close()

    run(body)


def test_replicas_share_the_database_and_refuse_a_single_monitor_and_it_them(url: str) -> None:
    async def body() -> None:
        r1 = await Store.open(url, replicated=True, holder=Holder.this_process("r1"))
        r2 = await Store.open(url, replicated=True, holder=Holder.this_process("r2"))
        try:
            assert r1.replicated
            assert not r1.exclusive
            with pytest.raises(DatabaseInUseError, match="ha:"):
                await Store.open(url, exclusive=True)
        finally:
            await r1.close()
            await r2.close()
        single = await Store.open(url, exclusive=True)
        try:
            with pytest.raises(DatabaseInUseError, match="without ha:"):
                await Store.open(url, replicated=True)
        finally:
            await single.close()

    run(body)


def test_rendezvous_spreads_logs_and_moves_few_when_a_replica_goes() -> None:
    names = [f"log-{i}" for i in range(300)]
    three = ["r1", "r2", "r3"]
    counts = {r: sum(preferred(n, three) == r for n in names) for r in three}
    assert all(70 <= c <= 130 for c in counts.values()), counts
    two = ["r1", "r2"]
    moved = [
        n for n in names if preferred(n, three) != "r3" and preferred(n, two) != preferred(n, three)
    ]
    assert moved == []  # only the logs of the replica that went move
    assert preferred("log-0", []) is None


class Replica:
    """A ``Leadership`` on its own store, as a replica process runs it."""

    def __init__(self, store: Store, name: str, ttl: float) -> None:
        self.name = name
        self.events: list[tuple[str, str]] = []
        self.lead = Leadership(
            store,
            store.holder.name,
            name,
            ttl,
            lambda: LOGS,
            gained=lambda log, lease: self.events.append(("gained", log)),
            lost=lambda log, why: self.events.append(("lost", log)),
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.lead.run(self.stop))

    async def crash(self) -> None:
        """Dies without a word: from now on it reaches no database (it neither renews nor
        releases: its leases run out by themselves), and leads nothing."""
        self.lead.store = Unreachable()
        await until(lambda: not self.lead.held)

    async def halt(self) -> None:
        self.stop.set()
        await self.task


async def until(cond: Callable[[], bool], seconds: float = 10.0) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > seconds:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class Unreachable:
    """A database that does not answer (a crashed replica's view of it)."""

    async def _fail(self, *args: object, **kwargs: object) -> Any:
        raise StorageError("database write failed: connection refused")

    heartbeat = renew_leases = take_leases = release_leases = leave = lease_rows = _fail
    evict = _fail


def test_leadership_spreads_logs_takes_over_from_the_dead_and_hands_over_to_a_newcomer(
    url: str,
) -> None:
    ttl = 1.0

    async def body() -> None:
        stores = [await Store.open(url, holder=Holder.this_process(f"r{i}")) for i in (1, 2, 3)]
        try:
            r1, r2 = Replica(stores[0], "r1", ttl), Replica(stores[1], "r2", ttl)
            holders = [s.holder.name for s in stores]

            def share(i: int, among: int) -> list[str]:
                """The logs replica ``i`` prefers among the first ``among`` (rendezvous)."""
                return sorted(n for n in LOGS if preferred(n, holders[:among]) == holders[i])

            def led() -> dict[str, list[str]]:
                return {r.name: sorted(r.lead.held) for r in replicas}

            def everyone() -> list[str]:
                return sorted(itertools.chain.from_iterable(led().values()))

            replicas = [r1, r2]
            # every log led by exactly one, each by the replica rendezvous hashing prefers,
            # once both have settled
            await until(
                lambda: [sorted(r.lead.held) for r in replicas] == [share(0, 2), share(1, 2)]
            )
            assert everyone() == LOGS
            # a third joins: it gets its share after a lease of life, nobody leads twice
            r3 = Replica(stores[2], "r3", ttl)
            replicas.append(r3)
            await until(lambda: sorted(r3.lead.held) == share(2, 3) and everyone() == LOGS)
            # r1 dies: its logs are taken within about a lease, by the others
            dead = sorted(r1.lead.held)
            await r1.crash()
            replicas.remove(r1)
            took = await until(lambda: all(any(n in r.lead.held for r in replicas) for n in dead))
            assert took < ttl + 0.8, took
            assert everyone() == LOGS
            # a clean stop hands over at once (well within a lease)
            leaving = sorted(r2.lead.held)
            await r2.halt()
            replicas.remove(r2)
            took = await until(lambda: all(n in r3.lead.held for n in leaving))
            # released at once, taken at the other's next round: a third of a lease, and up
            # to a second more on a machine that runs the whole suite beside it
            assert took < ttl / 3 + 1.0, took
            await r3.halt()
        finally:
            for s in stores:
                await s.close()

    run(body)


def test_a_replica_paused_past_its_lease_stops_leading_before_it_asks_the_database(
    url: str,
) -> None:
    """Its own clock says the lease ran out: it leads nothing, and writes nothing, even
    before its next round; the round then tells it another replica took the log."""

    async def body() -> None:
        store = await Store.open(url, holder=Holder.this_process("r1"))
        other = await Store.open(url, holder=Holder.this_process("r2"))
        now = [1000.0]
        events: list[tuple[str, str]] = []
        lead = Leadership(
            store,
            "A",
            "ra",
            0.5,
            lambda: ["log-a"],
            gained=lambda log, lease: events.append(("gained", log)),
            lost=lambda log, why: events.append(("lost", why)),
            clock=lambda: now[0],
        )
        try:
            await lead.tick()
            assert lead.leads("log-a")
            epoch = lead.lease("log-a").epoch
            now[0] += 0.6  # paused past the lease
            assert not lead.leads("log-a")
            with pytest.raises(LeaseLostError):
                lead.lease("log-a")
            await asyncio.sleep(0.6)  # meanwhile the lease runs out, and another takes it
            (taken,) = await other.take_leases(["log-a"], "B", "rb", 5.0)
            assert taken.epoch == epoch + 1
            await lead.tick()
            assert events == [
                ("gained", "log-a"),
                ("lost", "the lease ran out or was taken by another replica"),
            ]
            assert not lead.held
        finally:
            await store.close()
            await other.close()

    run(body)


def test_a_replica_s_sessions_end_an_idle_transaction_within_a_lease(url: str) -> None:
    """A replica paused inside a batch holds its lease row and the log's row until the server
    ends its session: within a lease, so that a takeover waits no longer than one."""
    assert idle_timeout(None) == 10.0
    assert idle_timeout(HaSettings(lease_ttl=timedelta(seconds=2))) == 2.0
    assert idle_timeout(HaSettings(lease_ttl=timedelta(minutes=1))) == 10.0

    async def body() -> None:
        store = await Store.open(url, idle_in_transaction_timeout=2.0)
        try:
            async with store.engine.connect() as conn:
                shown = await conn.execute(text("SHOW idle_in_transaction_session_timeout"))
                assert shown.scalar_one() == "2s"
        finally:
            await store.close()

    run(body)


def test_a_replica_stuck_inside_a_write_is_ended_so_that_its_log_is_taken(url: str) -> None:
    """A replica paused in the middle of a statement of a batch (its session waits for the
    rest of it: no idle timeout ends it) holds its lease row locked. Once its lease has run
    out and its heartbeat ended, another replica ends its sessions and takes the log, well
    before any timeout of the server would."""

    async def body() -> None:
        stuck = Holder.this_process("stuck")
        store = await Store.open(url, holder=Holder.this_process("r1"))
        paused = engines.make_engine(url, application_name=stuck.application_name())
        conn = None
        try:
            await store.heartbeat(stuck.name, "stuck", 0.3)
            (lease,) = await store.take_leases(["log-a"], stuck.name, "stuck", 0.3)
            conn = await paused.connect()
            await conn.begin()
            # as a batch does, then it stops mid-statement: a query that waits, as a
            # statement the client has not finished sending does
            await conn.execute(text("SELECT 1 FROM log_leases WHERE log = 'log-a' FOR SHARE"))
            waiting = asyncio.create_task(conn.execute(text("SELECT pg_sleep(60)")))
            await asyncio.sleep(0.5)  # its lease and heartbeat run out
            events: list[str] = []
            lead = Leadership(
                store,
                store.holder.name,
                "r1",
                0.6,
                lambda: ["log-a"],
                gained=lambda log, _lease: events.append(log),
                lost=lambda _log, _why: None,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(lead.run(stop))
            took = await until(lambda: lead.leads("log-a"), 8.0)
            assert took < 3.0, took  # not the 10 s idle timeout, nor the 60 s statement
            assert lead.lease("log-a").epoch == lease.epoch + 1
            with pytest.raises(DBAPIError, match="terminat"):  # its session was ended
                await waiting
            stop.set()
            await task
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):  # its session was ended under it
                    await conn.invalidate()  # closes the driver's connection, not pools it
                    await conn.close()
            await paused.dispose()
            await store.close()

    run(body)
