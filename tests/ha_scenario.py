"""The high-availability scenario (``tests/test_ha_failover.py``): the simulator, a webhook
receiver, a fresh database on the private server and three replicas' configs; waiting on
leadership as the database, the API and the metrics show it; and the checks of the end state
(every planted finding once, no entry doubled, no gap in index_all, every alert delivered,
every batch committed under its writer's lease)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from monitor.core.aio import wait_any
from tests.alert_receivers import HOOK, Receiver, finding_keys
from tests.daemon_support import SINKS
from tests.ha_postgres import Db, PrivatePostgres, app_pid, holder_pid
from tests.ha_support import (
    Fleet,
    Plants,
    Replica,
    api_get,
    plant_every,
    replica_config,
    samples,
    sim_sizes,
)
from tests.simlog import Harness, harness

REPLICAS = ("r1", "r2", "r3")
V1 = "v1"  # a v2 log is named after its shard (``v2@<host-port-shard>``): see ``Scenario.logs``
LEASE_TTL = 2.0
POLL_INTERVAL = 1.0  # the logs' poll_interval (tests.ha_support.replica_config)


@dataclass
class Scenario:
    h: Harness
    receiver: Receiver
    session: aiohttp.ClientSession
    db: Db
    fleet: Fleet
    plants: Plants
    logs: tuple[str, ...] = ()  # the stored logs' names, once a replica has registered them

    async def registered(self, timeout: float = 60.0) -> tuple[str, ...]:
        """The names of the v1 log and the v2 shard, once they are in the database."""
        deadline = time.monotonic() + timeout
        while len(self.logs) < 2:
            self.logs = tuple(sorted(await self.db.cursors()))
            assert time.monotonic() < deadline, f"logs not registered: {self.logs}"
            await asyncio.sleep(0.05)
        return self.logs

    def v2(self) -> str:
        (name,) = (n for n in self.logs if n != V1)
        return name


def kind(log: str) -> str:
    """``v1`` or ``v2``: the simulator's name of the log."""
    return V1 if log == V1 else "v2"


@asynccontextmanager
async def scenario(
    tmp_path: Path,
    pg: PrivatePostgres,
    *,
    backlog: int = 0,
    plant_step: int = 50,
    v1: dict[str, Any] | None = None,
) -> AsyncIterator[Scenario]:
    """The simulator (200 entries, then ``backlog`` more), plants every ``plant_step``
    indexes past them, a receiver, a fresh database and the replicas' configs (none
    started)."""
    async with (
        harness(tmp_path, entries=200, shards=2) as h,
        Receiver(secret=SINKS[0]["secret"]) as receiver,
        aiohttp.ClientSession() as session,
    ):
        plants = await plant_every(h, 200, 200 + backlog + 6000, plant_step)
        if backlog:
            await h.admin("append", {"v1": backlog, "v2": backlog})
        url = await pg.create_database(f"ha_{secrets.token_hex(4)}")
        configs = {
            rid: replica_config(
                tmp_path / f"{rid}.yaml",
                h,
                tmp_path,
                url,
                replica_id=rid,
                hook=receiver.url(HOOK),
                lease_ttl=f"{LEASE_TTL:g}s",
                v1=v1,
            )
            for rid in REPLICAS
        }
        db, fleet = Db(url), Fleet(configs)
        try:
            yield Scenario(h, receiver, session, db, fleet, plants)
        finally:
            await fleet.kill_all()
            await db.close()


# ----------------------------------------------------------------------------- waiting


async def diagnose(s: Scenario) -> str:
    """What a timeout reports: the leases, the heartbeats, the database's sessions, and the
    last log lines of every replica."""
    parts = [
        "leases: " + repr(sorted((await s.db.leases()).values())),
        "replicas: "
        + repr(
            await s.db.rows("SELECT holder, started_at, expires_at, now() AS now FROM replicas")
        ),
        "sessions: "
        + repr(
            await s.db.rows(
                "SELECT application_name, state, wait_event, left(query, 60) AS q,"
                " now() - xact_start AS xact FROM pg_stat_activity"
                " WHERE datname = current_database()"
            )
        ),
        s.fleet.tails(),
    ]
    return "\n".join(parts)


async def live_leader(s: Scenario, log: str, timeout: float = 30.0) -> tuple[Any, Replica]:
    """The lease of ``log`` while a live replica of ours holds it, and that replica."""
    deadline = time.monotonic() + timeout
    while True:
        lease = (await s.db.leases()).get(log)
        if lease is not None and lease.live:
            r = s.fleet.by_pid(holder_pid(lease.holder))
            if r is not None and r.alive:
                return lease, r
        if time.monotonic() > deadline:
            why = await diagnose(s)
            raise AssertionError(f"{log}: no live leader in {timeout}s ({lease})\n{why}")
        await asyncio.sleep(0.02)


async def whole(s: Scenario, timeout: float = 60.0) -> None:
    """Until all replicas but one at most beat: a takeover is measured with another replica
    running beside the victim, not while the only others are still starting."""
    deadline = time.monotonic() + timeout
    while True:
        beating = {
            holder_pid(r.holder)
            for r in await s.db.rows("SELECT holder FROM replicas WHERE expires_at > now()")
        }
        if sum(r.pid in beating for r in s.fleet.current.values()) >= len(REPLICAS) - 1:
            return
        if time.monotonic() > deadline:
            why = await diagnose(s)
            raise AssertionError(f"replicas not all beating: {beating}\n{why}")
        await asyncio.sleep(0.05)


async def first_commit(
    s: Scenario, log: str, after: float, *, by_not: int | None = None, timeout: float = 30.0
) -> Any:
    """The first batch of ``log`` committed after ``after`` (by a process other than pid
    ``by_not``): its audit row, polled every 20 ms."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await s.db.rows(
            "SELECT app, extract(epoch FROM at)::float8 AS at, lease_holder, lease_epoch"
            " FROM ha_audit WHERE tbl = 'logs' AND log = :log AND at > to_timestamp(:after)"
            " ORDER BY at",
            log=log,
            after=after,
        )
        mine = [r for r in rows if by_not is None or app_pid(r.app) != by_not]
        if mine:
            return mine[0]
        if time.monotonic() > deadline:
            why = await diagnose(s)
            raise AssertionError(
                f"{log}: no batch committed in {timeout}s (not by {by_not})\n{why}"
            )
        await asyncio.sleep(0.02)


async def all_ready(s: Scenario, timeout: float = 60.0) -> float:
    """When every live replica answers /readyz 200 and every log has a live lease."""
    deadline = time.monotonic() + timeout
    while True:
        answers = [await api_get(s.session, r, "/readyz") for r in s.fleet.live()]
        if answers and all(a[0] == 200 for a in answers):
            leases = await s.db.leases()
            if all(log in leases and leases[log].live for log in s.logs):
                return time.time()
        if time.monotonic() > deadline:
            why = await diagnose(s)
            raise AssertionError(f"not ready in {timeout}s: {answers}\n{why}")
        await asyncio.sleep(0.05)


async def leaders_agree(s: Scenario, timeout: float = 15.0) -> dict[str, str]:
    """Every log's lease (the database), every replica's /api/v1/logs ``leader`` and its
    ``tlog_monitor_log_leader`` gauge name the same replica: 1 from the holder, 0 from the
    others. The leaders by log."""
    deadline = time.monotonic() + timeout
    while True:
        leases = await s.db.leases()
        problems = []
        for log in s.logs:
            lease = leases.get(log)
            if lease is None or not lease.live:
                problems.append(f"{log}: no live lease ({lease})")
                continue
            for r in s.fleet.live():
                status, doc = await api_get(s.session, r, "/api/v1/logs")
                items = {i["name"]: i for i in doc["items"]} if status == 200 else {}
                leader = (items.get(log) or {}).get("leader") or {}
                if leader.get("replica") != lease.replica:
                    problems.append(f"{r.replica_id} API: {log} led by {leader}, lease {lease}")
                status, text = await api_get(s.session, r, "/metrics")
                gauge = samples(text, "tlog_monitor_log_leader") if status == 200 else {}
                want = 1.0 if holder_pid(lease.holder) == r.pid else 0.0
                if gauge.get(log) != want:
                    problems.append(f"{r.replica_id} metrics: {log} {gauge.get(log)} != {want}")
        if not problems:
            return {log: leases[log].replica for log in s.logs}
        if time.monotonic() > deadline:
            raise AssertionError("leaders disagree:\n" + "\n".join(problems))
        await asyncio.sleep(0.2)


# ----------------------------------------------------------------------------- the end state


async def caught_up(s: Scenario, timeout: float = 90.0) -> dict[str, int]:
    """Once growth has stopped: until both cursors reach the logs' sizes and every outbox
    row is delivered (or dead: the check after says none may be)."""
    sizes = await sim_sizes(s.h)
    deadline = time.monotonic() + timeout
    while True:
        cursors = await s.db.cursors()
        (pending,) = await s.db.rows(
            "SELECT count(*) AS n FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL"
        )
        if all(cursors.get(log) == sizes[kind(log)] for log in s.logs) and pending.n == 0:
            return sizes
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not caught up in {timeout}s: cursors {cursors}, sizes {sizes}, "
                f"{pending.n} alerts pending\n{s.fleet.tails()}"
            )
        await asyncio.sleep(0.2)


async def check_stored(s: Scenario, sizes: dict[str, int]) -> None:
    """Every planted finding once, no entry twice, index_all without a gap."""
    db = s.db
    logs = {r.name: r for r in await db.rows("SELECT name, cursor, first_index FROM logs")}
    for log in s.logs:
        cursor, first = logs[log].cursor, logs[log].first_index
        assert cursor == sizes[kind(log)]
        assert first == 0  # start: 0
        (ia,) = await db.rows(
            "SELECT count(*) AS n, count(DISTINCT i.idx) AS d, min(i.idx) AS lo,"
            " max(i.idx) AS hi FROM index_all i JOIN index_all_logs l ON l.id = i.log_id"
            " WHERE l.log = :log",
            log=log,
        )
        assert (ia.n, ia.d, ia.lo, ia.hi) == (cursor - first, cursor - first, first, cursor - 1)
        planted = s.plants.below(sizes[kind(log)])
        (e,) = await db.rows(
            "SELECT count(*) AS n, count(DISTINCT idx) AS d FROM entries WHERE log = :log",
            log=log,
        )
        stored = {r.idx for r in await db.rows("SELECT idx FROM entries WHERE log = :log", log=log)}
        assert e.n == e.d == len(planted)
        assert stored == set(planted)
        found = await db.rows(
            "SELECT rule, idx, count(*) AS n FROM findings WHERE log = :log AND rule IS NOT NULL"
            " GROUP BY rule, idx",
            log=log,
        )
        assert {r.idx: r.rule for r in found} == planted
        assert {r.n for r in found} == {1}


async def check_delivered(s: Scenario) -> int:
    """Every outbox row delivered, every finding's webhook seen; the number of webhook ids
    the receiver processed more than once."""
    rows = await s.db.rows("SELECT dedup_key, delivered_at, dead_at, message_id FROM outbox")
    assert rows
    assert [r for r in rows if r.delivered_at is None or r.dead_at is not None] == []
    processed = s.receiver.processed(HOOK)
    ids = Counter(r.headers["webhook-id"] for r in processed)
    assert {r.message_id for r in rows if r.message_id is not None} <= set(ids)
    findings = await s.db.rows("SELECT dedup_key FROM findings WHERE rule IS NOT NULL")
    assert {f.dedup_key for f in findings} <= set(finding_keys(processed))
    return sum(1 for n in ids.values() if n > 1)


async def check_fenced(s: Scenario) -> int:
    """Every batch (logs update, entries insert) was committed by the process that held the
    log's lease at COMMIT; the number of audited writes."""
    rows = await s.db.audit()
    strays = [
        r
        for r in rows
        if holder_pid(r.lease_holder) is None or holder_pid(r.lease_holder) != app_pid(r.app)
    ]
    assert strays == [], strays[:10]
    return len(rows)


async def settle_and_check(s: Scenario) -> int:
    """Catch up, compare what leads, stop every replica with SIGTERM, check everything; the
    webhook ids seen more than once."""
    started = time.monotonic()
    sizes = await caught_up(s)
    settled = time.monotonic()
    await leaders_agree(s)
    print(f"\n  caught up and delivered {settled - started:.1f} s after growth stopped")
    codes = await s.fleet.terminate_all()
    assert set(codes.values()) == {0}, f"{codes}\n{s.fleet.tails()}"
    await check_stored(s, sizes)
    await check_fenced(s)
    return await check_delivered(s)


async def writing(s: Scenario, pid: int, timeout: float = 30.0) -> str:
    """Until a session of process ``pid`` is in an INSERT, preferably one whose server waits
    for the rest of it from the client (polled as fast as the database answers; after half
    of ``timeout``, any INSERT in progress will do). What was seen."""
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        rows = await s.db.rows(
            "SELECT wait_event FROM pg_stat_activity WHERE application_name LIKE :app"
            " AND state = 'active' AND query LIKE 'INSERT%'",
            app=f"tlog-monitor {pid} %",
        )
        waits = {r.wait_event for r in rows}
        if "ClientRead" in waits:
            return "an INSERT waiting for the client"
        if waits and time.monotonic() > started + timeout / 2:
            return "an INSERT in progress"
    raise AssertionError(f"no INSERT of process {pid} seen in {timeout}s")


async def watch_sessions(
    s: Scenario,
    pid: int,
    since: float,
    seen: dict[tuple[str, ...], list[float]],
    stop: asyncio.Event,
) -> None:
    """Every 50 ms until ``stop``: the sessions of process ``pid`` (state, what it waits
    for, its query), each with when it was first and last seen (seconds after ``since``).
    Stopped between queries, not cancelled in one: a connection cancelled mid-query is
    left unclosed."""
    while not stop.is_set():
        rows = await s.db.rows(
            "SELECT pid, state, coalesce(wait_event, '') AS wait, left(query, 50) AS query"
            " FROM pg_stat_activity WHERE application_name LIKE :app",
            app=f"tlog-monitor {pid} %",
        )
        now = time.time() - since
        for r in rows:
            key = (str(r.pid), r.state or "", r.wait, r.query)
            seen.setdefault(key, [now, now])[1] = now
        await wait_any([stop], 0.05)
