"""Every alert once across replicas: two stores with different holders on one PostgreSQL
database, each with a worker for the same sink, against one receiver over loopback; a
replica that died holding claims; a message's webhook-id kept for life (``outbox.message_id``).
The sticky-id cases that need no second replica run on SQLite too."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, insert

from monitor.alerts.deliver import CLAIM_MARGIN, SinkWorker
from monitor.alerts.payloads import message_id
from monitor.config.models import AlertSettings, SinkSettings
from monitor.core.errors import StorageError
from monitor.core.findings import Finding
from monitor.core.metrics import AlertMetrics
from monitor.storage.batch import OutboxSpec
from monitor.storage.lock import Holder
from monitor.storage.models import Replica
from monitor.storage.outbox import OutboxItem
from monitor.storage.store import Store
from tests import storage_reads as reads
from tests.alert_receivers import HOOK, Receiver, Reply, finding_keys
from tests.storage_support import (
    ENGINES,
    PgDatabases,
    cert_record,
    finding_for,
    fresh_url,
    pg_databases_fixture,
    require_postgres,
    run,
)
from tests.test_alerts_delivery import SECRET, Clock

LOG = "rekor.example"
MESSAGES = "tlog_monitor_alert_messages_total"
pg_dbs = pytest.fixture(scope="session")(pg_databases_fixture)


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"))


@pytest.fixture
def pg_url(pg_dbs: PgDatabases) -> str:
    require_postgres()
    return pg_dbs.create(migrated=True)


def finding(index: int, rule: str = "acme-release") -> Finding:
    return finding_for(cert_record(LOG, index), rule=rule)


def holder(replica: str) -> Holder:
    return Holder(replica, os.getpid(), datetime.now(UTC).isoformat(timespec="seconds"))


async def heartbeat(store: Store, until: datetime | None) -> None:
    """The ``replicas`` row of the store's holder, live until ``until`` (None: no row)."""
    me = store.holder
    async with store.engine.begin() as conn:
        await conn.execute(delete(Replica).where(Replica.holder == me.name))
        if until is not None:
            row = {"holder": me.name, "replica": me.host, "started_at": until, "expires_at": until}
            await conn.execute(insert(Replica).values(**row))


@dataclass
class Replicas:
    """Stores on one database, one per replica, a receiver and an HTTP session."""

    url: str
    stores: list[Store]
    receiver: Receiver
    session: aiohttp.ClientSession

    async def replica(self, name: str, *, live: bool | None = True) -> Store:
        """Another replica's store: its own holder and heartbeat (``live`` False: expired,
        None: absent), and ``replicated`` as the daemon sets it in HA mode."""
        store = await Store.open(self.url)
        self.stores.append(store)
        store.holder = holder(name)
        store.replicated = True
        now = datetime.now(UTC)
        if live is not None:
            await heartbeat(store, now + timedelta(hours=1) if live else now - timedelta(1))
        return store

    def sink(self, **extra: Any) -> SinkSettings:
        doc = {"name": "soc", "type": "webhook", "url": self.receiver.url(HOOK), "secret": SECRET}
        return SinkSettings.model_validate({"group_window": "0s", **doc, **extra})

    def worker(self, store: Store, sink: SinkSettings, **kw: Any) -> SinkWorker:
        kw.setdefault("retry_base", 0.01)
        return SinkWorker(sink, store, self.session, AlertSettings(), **kw)

    async def add(self, store: Store, findings: list[Finding]) -> list[str]:
        keys = [f.dedup_key for f in findings]
        await store.store_findings(findings, outbox=[OutboxSpec(k, ("soc",)) for k in keys])
        return keys

    async def rows(self, keys: list[str]) -> list[OutboxItem]:
        return [o for k in keys for o in await reads.outbox_for(self.stores[0], k)]


@asynccontextmanager
async def replicas(url: str, clock: Callable[[], float] = time.time) -> AsyncIterator[Replicas]:
    first = await Store.open(url)
    await first.register_log(LOG, "v1", "https://rekor.example")
    receiver = Receiver(secret=SECRET, clock=clock)
    await receiver.start()
    session = aiohttp.ClientSession()
    env = Replicas(url, [first], receiver, session)
    try:
        yield env
    finally:
        await session.close()
        await receiver.stop()
        for s in env.stores:
            await s.close()


def with_replicas(
    url: str, body: Callable[[Replicas], Awaitable[None]], clock: Callable[[], float] = time.time
) -> None:
    async def main() -> None:
        async with replicas(url, clock) as env:
            await body(env)

    run(main)


async def die_posting(env: Replicas, worker: SinkWorker) -> str:
    """``worker`` claims the due rows and posts them; the receiver takes the message and
    answers late; the replica dies meanwhile (its task cancelled: nothing is marked). The
    webhook-id it posted under."""
    before = len(env.receiver.at(HOOK))
    env.receiver.script(HOOK, [Reply(200, delay=30.0)])
    task = asyncio.create_task(worker.step(group_wait=False))
    await env.receiver.wait_for(lambda: len(env.receiver.at(HOOK)) > before, timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return env.receiver.at(HOOK)[-1].headers["webhook-id"]


# --- two replicas at once ----------------------------------------------------------------


def test_two_replicas_deliver_every_row_once_under_one_id_each(pg_url: str) -> None:
    """Both replicas' workers run while findings are queued through both, with failures the
    receiver answers 500 to: each row is delivered once, each webhook-id processed once, and
    a message carries the same findings every time its id is posted."""

    async def body(env: Replicas) -> None:
        a, b = await env.replica("replica-a"), await env.replica("replica-b")
        sink = env.sink(group_window="0.2s", rate_limit_per_minute=10_000, timeout="2s")
        metrics = [AlertMetrics(CollectorRegistry()) for _ in (a, b)]
        workers = [env.worker(s, sink, metrics=m) for s, m in zip((a, b), metrics, strict=True)]
        env.receiver.script(HOOK, [200, 500, 200, 200, 500, 500, 200, 503], then=200)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop, idle=0.05)) for w in workers]
        rng = random.Random(19)
        keys: list[str] = []
        for n in range(40):  # through either replica, as each tails its own logs
            batch = [finding(3 * n + i, rule=f"r{rng.randrange(3)}") for i in range(3)]
            keys += await env.add((a, b)[n % 2], batch)
            for w in workers:
                w.wake()
            await asyncio.sleep(rng.uniform(0, 0.03))
        deadline = time.monotonic() + 30
        while await a.pending_outbox("soc") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)

        rows = await env.rows(keys)
        assert len(rows) == len(keys) == 120
        assert all(r.delivered_at is not None for r in rows)
        for row in rows:
            statuses = Counter(x.status for x in await a.attempts(row.id))
            assert statuses["delivered"] == 1, statuses
        reqs = env.receiver.at(HOOK)
        processed = env.receiver.processed(HOOK)
        ids = Counter(r.headers["webhook-id"] for r in processed)
        repeats = {i: n for i, n in ids.items() if n > 1}
        assert repeats == {}, f"{len(repeats)} webhook-ids processed more than once"
        assert Counter(finding_keys(processed)) == Counter(keys)  # each finding once
        carried: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        for r in reqs:
            carried[r.headers["webhook-id"]].add(tuple(finding_keys([r])))
        assert all(len(sets) == 1 for sets in carried.values())  # a retry is the same message
        by_key = {row.dedup_key: row for row in rows}
        for r in processed:
            assert {by_key[k].message_id for k in finding_keys([r])} == {r.headers["webhook-id"]}
            assert len({f["rule"] for f in r.json["findings"]}) == 1
        assert len(reqs) > len(processed)  # the failures were retried
        sent = [
            m.registry.get_sample_value(MESSAGES, {"sink": "soc", "event": "trigger"}) or 0
            for m in metrics
        ]
        assert sum(sent) == len(processed)
        assert all(sent)  # both replicas delivered
        print(f"\n{len(keys)} rows, {len(processed)} messages ({sent}), {len(reqs)} requests")

    with_replicas(pg_url, body)


# --- a replica that died holding claims ----------------------------------------------------


@pytest.mark.parametrize("heartbeat_state", ["expired", "absent"])
def test_a_dead_replicas_claims_are_sent_by_another_at_once_under_its_id(
    pg_url: str, heartbeat_state: str
) -> None:
    async def body(env: Replicas) -> None:
        x = await env.replica("replica-x")
        keys = await env.add(x, [finding(i, rule="a") for i in (1, 2, 3)])
        sink = env.sink(group_window="30s", timeout="5s")
        x_id = await die_posting(env, env.worker(x, sink))
        assert x_id == message_id("trigger", keys)
        rows = await env.rows(keys)
        assert {(r.claimed_by, r.message_id) for r in rows} == {(x.holder.name, x_id)}
        claimed_until = rows[0].claimed_until
        assert claimed_until is not None
        await heartbeat(x, None if heartbeat_state == "absent" else datetime.now(UTC))

        # another replica: new findings of the rule within the window would regroup the rows,
        # but x's message goes out as it was, at once (not after its claim's 65 s)
        y = await env.replica("replica-y")
        later = await env.add(y, [finding(4, rule="a")])
        worker = env.worker(y, sink)
        assert await worker.step(group_wait=False) == 0.0
        assert datetime.now(UTC) < claimed_until
        again = env.receiver.at(HOOK)[-1]
        assert again.headers["webhook-id"] == x_id
        assert finding_keys([again]) == keys
        assert again.duplicate  # the receiver had it from x: dropped, not acted on twice
        assert await worker.step(group_wait=False) == 0.0
        last = env.receiver.at(HOOK)[-1]
        assert finding_keys([last]) == later
        assert last.headers["webhook-id"] == message_id("trigger", later)
        assert all(r.delivered_at is not None for r in await env.rows(keys + later))
        assert finding_keys(env.receiver.unique(HOOK)) == keys + later

    with_replicas(pg_url, body)


def test_a_live_replicas_claim_is_waited_for_until_it_expires(pg_url: str) -> None:
    """A claim of a live replica (its heartbeat holds) is left to it; the other looks again
    every second, and takes it, under the same id, once the claim expired."""
    clock = Clock()

    async def body(env: Replicas) -> None:
        x = await env.replica("replica-x")
        keys = await env.add(x, [finding(i, rule="a") for i in (1, 2)])
        # the rows were written by the real clock, which ran on past the fake one while the
        # replicas started (seconds under load): the fake one starts just after the rows
        clock.now = max(r.next_attempt_at for r in await env.rows(keys)) + timedelta(seconds=1)
        sink = env.sink(group_window="30s", timeout="5s")
        x_id = await die_posting(env, env.worker(x, sink, clock=clock))
        sent = len(env.receiver.at(HOOK))
        y = await env.replica("replica-y")
        worker = env.worker(y, sink, clock=clock)
        delay = await worker.step()
        assert delay is not None
        assert 0 < delay <= 1.0  # looked at again soon: were x to die, it is not waited for
        assert len(env.receiver.at(HOOK)) == sent
        clock.advance((sink.timeout + CLAIM_MARGIN).total_seconds() + 1)
        assert await worker.step() == 0.0
        again = env.receiver.at(HOOK)[-1]
        assert (again.headers["webhook-id"], finding_keys([again])) == (x_id, keys)
        assert all(r.delivered_at is not None for r in await env.rows(keys))

    with_replicas(pg_url, body, clock.unix)


def test_a_replica_that_dies_while_waiting_frees_its_claim_at_once(pg_url: str) -> None:
    """The claim's holder was live when first looked at, then its heartbeat expired: the
    other takes the rows on its next look, not when the claim expires."""

    async def body(env: Replicas) -> None:
        x = await env.replica("replica-x")
        keys = await env.add(x, [finding(1)])
        sink = env.sink(timeout="5s")
        x_id = await die_posting(env, env.worker(x, sink))
        worker = env.worker(await env.replica("replica-y"), sink)
        delay = await worker.step()
        assert delay is not None
        assert 0 < delay <= 1.0
        await heartbeat(x, datetime.now(UTC) - timedelta(seconds=1))
        assert await worker.step() == 0.0
        again = env.receiver.at(HOOK)[-1]
        assert (again.headers["webhook-id"], finding_keys([again])) == (x_id, keys)

    with_replicas(pg_url, body)


def test_a_partly_delivered_message_is_finished_under_its_id(pg_url: str) -> None:
    """x posted a group, the receiver took it, and x died after marking one of its rows: the
    rest go out from the other replica under the same webhook-id (and are dropped there)."""

    async def body(env: Replicas) -> None:
        x = await env.replica("replica-x")
        keys = await env.add(x, [finding(i, rule="a") for i in (1, 2, 3)])
        sink = env.sink(group_window="30s", timeout="5s")
        x_id = await die_posting(env, env.worker(x, sink))
        first = (await env.rows(keys[:1]))[0]
        await x.mark_delivered(first.id, at=datetime.now(UTC), duration=0.1)
        await heartbeat(x, datetime.now(UTC) - timedelta(seconds=1))
        worker = env.worker(await env.replica("replica-y"), sink)
        assert await worker.step() == 0.0
        again = env.receiver.at(HOOK)[-1]
        assert (again.headers["webhook-id"], finding_keys([again])) == (x_id, keys[1:])
        assert again.duplicate
        assert await worker.step() is None
        assert finding_keys(env.receiver.unique(HOOK)) == keys

    with_replicas(pg_url, body)


# --- sticky ids, either engine --------------------------------------------------------------


def test_a_claimed_message_is_sent_whole_over_a_row_committed_late_between(url: str) -> None:
    """Rows 1 and 3 were claimed as one message while row 2's transaction had not committed
    (ids are taken before commit): the message goes out whole under its id, then row 2."""

    async def body(env: Replicas) -> None:
        store = env.stores[0]
        keys = await env.add(store, [finding(i, rule="a") for i in (1, 2, 3)])
        rows = await env.rows(keys)
        now = datetime.now(UTC)
        m = message_id("trigger", [keys[0], keys[2]])
        gone = holder("replica-x").name
        ids = [rows[0].id, rows[2].id]
        assert await store.claim_outbox(ids, gone, now=now, until=now, message_id=m)
        # a claim under another id, or of a row that carries another, is refused whole
        other = message_id("trigger", keys)
        assert not await store.claim_outbox(
            [r.id for r in rows], gone, now=now, until=now, message_id=other
        )
        assert [r.message_id for r in await env.rows(keys)] == [m, None, m]
        worker = env.worker(store, env.sink(group_window="30s"))
        assert await worker.step(group_wait=False) == 0.0
        assert await worker.step(group_wait=False) == 0.0
        reqs = env.receiver.at(HOOK)
        assert [(r.headers["webhook-id"], finding_keys([r])) for r in reqs] == [
            (m, [keys[0], keys[2]]),
            (message_id("trigger", keys[1:2]), keys[1:2]),
        ]
        assert [r.message_id for r in await env.rows(keys)] == [
            m,
            message_id("trigger", keys[1:2]),
            m,
        ]

    with_replicas(url, body)


def test_a_replayed_dead_letter_is_a_message_of_its_own(url: str) -> None:
    """A group refused (400) dies whole; its rows replayed one by one each go out under an id
    of their own: under the group's, the receiver that took the first would drop the second."""

    async def body(env: Replicas) -> None:
        store = env.stores[0]
        keys = await env.add(store, [finding(i, rule="a") for i in (1, 2)])
        env.receiver.script(HOOK, [400])
        worker = env.worker(store, env.sink(group_window="30s"))
        assert await worker.step(group_wait=False) == 0.0
        group_id = message_id("trigger", keys)
        assert env.receiver.at(HOOK)[0].headers["webhook-id"] == group_id
        rows = await env.rows(keys)
        assert all(r.dead_at is not None and r.message_id == group_id for r in rows)
        for row, key in zip(rows, keys, strict=True):
            assert await store.replay(row.id)
            assert (await env.rows([key]))[0].message_id is None
            assert await worker.step(group_wait=False) == 0.0
            last = env.receiver.at(HOOK)[-1]
            assert (last.headers["webhook-id"], finding_keys([last])) == (
                message_id("trigger", [key]),
                [key],
            )
        assert finding_keys(env.receiver.unique(HOOK)) == keys

    with_replicas(url, body)


def test_dead_holders_claims_are_free_only_when_asked(url: str) -> None:
    """The store's side: ``dead_holders_free`` frees the claims of holders without a live
    heartbeat (by the database's clock on PostgreSQL), and only theirs."""

    async def body(env: Replicas) -> None:
        store = env.stores[0]
        keys = await env.add(store, [finding(i) for i in (1, 2, 3)])
        ids = [r.id for r in await env.rows(keys)]
        live = await env.replica("replica-live")
        dead = await env.replica("replica-dead", live=False)
        now = datetime.now(UTC)
        until = now + timedelta(hours=1)
        assert await live.live_holder(live.holder.name)
        assert not await live.live_holder(dead.holder.name)
        assert not await live.live_holder("never-seen:1:2026-01-01T00:00:00+00:00")
        assert await live.claim_outbox(ids[:1], live.holder.name, now=now, until=until)
        assert await dead.claim_outbox(ids[1:], dead.holder.name, now=now, until=until)
        me = holder("replica-me").name
        assert not await store.claim_outbox(ids[1:], me, now=now, until=until)
        assert await store.claim_outbox(ids[1:], me, now=now, until=until, dead_holders_free=True)
        assert not await store.claim_outbox(
            ids[:1], me, now=now, until=until, dead_holders_free=True
        )
        claimed = {r.id: r.claimed_by for r in await env.rows(keys)}
        assert claimed == {ids[0]: live.holder.name, ids[1]: me, ids[2]: me}

    with_replicas(url, body)


def test_a_message_is_marked_delivered_whole_or_not_at_all(url: str) -> None:
    async def body(env: Replicas) -> None:
        store = env.stores[0]
        keys = await env.add(store, [finding(i) for i in (1, 2)])
        ids = [r.id for r in await env.rows(keys)]
        now = datetime.now(UTC)
        with pytest.raises(StorageError):
            await store.mark_message_delivered([*ids, 99_999], at=now, duration=0.1)
        assert [r.delivered_at for r in await env.rows(keys)] == [None, None]
        await store.mark_message_delivered(ids, at=now, duration=0.1)
        assert [r.delivered_at for r in await env.rows(keys)] == [now, now]
        assert [[a.status for a in await store.attempts(i)] for i in ids] == [["delivered"]] * 2

    with_replicas(url, body)
