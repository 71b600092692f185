"""Alert delivery (``monitor.alerts.deliver``) against real receivers on loopback: a SQLite
store, the worker driven step by step with a fake clock (retries are due in milliseconds),
and receivers that check signatures and drop repeats the way real ones do."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select

from monitor import __version__
from monitor.alerts.deliver import GROUP_MAX, SinkWorker
from monitor.alerts.payloads import message_id, webhook_schema
from monitor.config.models import AlertSettings, SinkSettings
from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.core.metrics import AlertMetrics
from monitor.storage.base import ATTEMPTS, OUTBOX
from monitor.storage.batch import OutboxSpec
from monitor.storage.outbox import OutboxItem
from monitor.storage.store import Store
from tests import storage_reads as reads
from tests.alert_receivers import (
    ALERTMANAGER,
    FORMATS,
    HOOK,
    PAGERDUTY,
    SLACK,
    Receiver,
    Reply,
    alert_state,
    finding_keys,
)
from tests.storage_support import cert_record, finding_for, run, sqlite_url

LOG = "rekor.example"
SECRET = "whsec_" + base64.b64encode(b"delivery-tests-signing-key-32by").decode()
SLACK_SECRET_PATH = "/T0001/B0002/sl4ckS3cretT0ken0123456789"
ROUTING_KEY = "R0ut1ngKeyS3cret0123456789abcdef"
# an Alertmanager behind a proxy: its URL carries credentials and a path prefix
AM_USER, AM_PASSWORD, AM_PREFIX = "amUs3rN4me", "amP4ssw0rdS3cret", "/am-pr3fix-s3cret"
DELIVERIES = "tlog_monitor_alert_deliveries_total"


class Clock:
    """The worker's clock: real time at the start, moved on only by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def unix(self) -> float:
        return self.now.timestamp()


@dataclass
class Env:
    store: Store
    receiver: Receiver
    session: aiohttp.ClientSession
    clock: Clock

    def sink(self, type_: str = "webhook", name: str = "soc", **extra: Any) -> SinkSettings:
        doc: dict[str, Any] = {"name": name, "type": type_, "group_window": "0s", **extra}
        if type_ == "webhook":
            doc.setdefault("url", self.receiver.url(HOOK))
            doc.setdefault("secret", SECRET)
        elif type_ == "slack":
            doc.setdefault("url", self.receiver.url(SLACK + SLACK_SECRET_PATH))
        elif type_ == "pagerduty":
            doc.setdefault("url", self.receiver.url(PAGERDUTY))
            doc.setdefault("routing_key", ROUTING_KEY)
        else:
            doc.setdefault("url", self.receiver.url(""))  # the base URL, as documented
        return SinkSettings.model_validate(doc)

    def am_url(self) -> str:
        """The receiver's Alertmanager base URL with credentials and a path prefix."""
        return f"http://{AM_USER}:{AM_PASSWORD}@127.0.0.1:{self.receiver.port}{AM_PREFIX}"

    def worker(
        self, sink: SinkSettings, *, alerts: dict[str, Any] | None = None, **kw: Any
    ) -> SinkWorker:
        settings = AlertSettings.model_validate(alerts or {})
        kw.setdefault("retry_base", 0.01)
        return SinkWorker(sink, self.store, self.session, settings, clock=self.clock, **kw)

    async def add(self, findings: Sequence[Finding], *sinks: str) -> list[str]:
        """Store findings now (by the fake clock), each queued for ``sinks``."""
        keys = [f.dedup_key for f in findings]
        await self.store.store_findings(
            findings, outbox=[OutboxSpec(k, sinks or ("soc",)) for k in keys], at=self.clock.now
        )
        return keys

    async def idle(self, worker: SinkWorker, *, max_steps: int = 100) -> int:
        """Step until nothing waits, moving the clock to whatever is due next; steps taken."""
        for n in range(1, max_steps + 1):
            delay = await worker.step()
            if delay is None:
                return n
            self.clock.advance(delay + 0.001)
        raise AssertionError(f"still busy after {max_steps} steps")

    async def row(self, key: str, sink: str = "soc", event: str = "trigger") -> OutboxItem:
        (item,) = [
            o for o in await reads.outbox_for(self.store, key) if (o.sink, o.event) == (sink, event)
        ]
        return item

    async def finding_id(self, key: str) -> int:
        stored = await self.store.finding_by_key(key)
        assert stored is not None
        assert stored.finding.id is not None
        return stored.finding.id


@asynccontextmanager
async def environment(tmp_path: Path) -> AsyncIterator[Env]:
    clock = Clock()
    store = await Store.open(sqlite_url(tmp_path))
    await store.register_log(LOG, "v1", "https://rekor.example")
    receiver = Receiver(secret=SECRET, clock=clock.unix)
    await receiver.start()
    session = aiohttp.ClientSession()
    try:
        yield Env(store, receiver, session, clock)
    finally:
        await session.close()
        await receiver.stop()
        await store.close()


def with_env(tmp_path: Path, body: Callable[[Env], Awaitable[None]]) -> None:
    async def main() -> None:
        async with environment(tmp_path) as env:
            await body(env)

    run(main)


def rule_finding(index: int, rule: str = "acme-release", **kw: Any) -> Finding:
    return finding_for(cert_record(LOG, index), rule=rule, **kw)


def integrity_finding(n: int, at: datetime) -> Finding:
    return Finding(
        kind=FindingKind.INTEGRITY_FAILURE,
        severity=Severity.CRITICAL,
        dedup_key=dedup_key(FindingKind.INTEGRITY_FAILURE, "tree_shrunk", LOG, n),
        log=LOG,
        type="tree_shrunk",
        detail=f"the log shrank to {n} entries",
        created_at=at,
    )


def health_finding(at: datetime) -> Finding:
    return Finding(
        kind=FindingKind.HEALTH,
        severity=Severity.HIGH,
        dedup_key=dedup_key(FindingKind.HEALTH, "log_unreachable", LOG),
        log=LOG,
        type="log_unreachable",
        detail=f"{LOG} has not answered for 6 minutes",
        created_at=at,
    )


# --- webhook -----------------------------------------------------------------------------


def test_webhook_is_signed_and_delivered_once_across_restarts(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([rule_finding(7)])
        sink = env.sink()
        assert await env.worker(sink).step() == 0.0
        (req,) = env.receiver.at(HOOK)
        assert req.signature_valid is True
        assert req.status == 200
        assert req.headers["webhook-id"] == message_id("trigger", [key])
        assert req.headers["webhook-timestamp"] == str(int(env.clock.unix()))
        assert req.headers["webhook-signature"].startswith("v1,")
        assert req.headers["content-type"] == "application/json"
        doc = req.json
        schema: dict[str, Any] = webhook_schema()  # JSON Schema: read, not typed
        assert set(schema["required"]) <= set(doc)
        assert doc["schema"] == "tlog-monitor.webhook/v1"
        assert doc["type"] == "finding.triggered"
        assert doc["id"] == req.headers["webhook-id"]
        assert doc["sink"] == "soc"
        assert doc["rule"] == "acme-release"
        assert doc["count"] == 1
        assert doc["monitor"] == {"version": __version__}
        (f,) = doc["findings"]
        assert set(schema["$defs"]["finding"]["required"]) <= set(f)
        assert (f["dedup_key"], f["log"], f["index"], f["severity"]) == (key, LOG, 7, "high")
        row = await env.row(key)
        assert row.delivered_at == env.clock.now
        assert [a.status for a in await env.store.attempts(row.id)] == ["delivered"]

        # a restart: a new worker, a new session, the store opened again
        url = sqlite_url(tmp_path)
        store = await Store.open(url)
        try:
            async with aiohttp.ClientSession() as session:
                again = SinkWorker(sink, store, session, AlertSettings(), clock=env.clock)
                assert await again.step() is None
                assert await again.drain(time.monotonic() + 5) == 0
        finally:
            await store.close()
        assert len(env.receiver.requests) == 1

    with_env(tmp_path, body)


def test_a_worker_woken_by_a_commit_sends_at_once_not_at_its_poll(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        worker = env.worker(env.sink())
        env.store.queued = worker.wake  # as the daemon wires them
        stop = asyncio.Event()
        task = asyncio.ensure_future(worker.run(stop, idle=60.0))
        try:
            await asyncio.sleep(0.2)  # nothing waits: the worker sleeps until its next poll
            assert env.receiver.at(HOOK) == []
            await env.add([rule_finding(7)])
            deadline = time.monotonic() + 5  # far less than the 60 s poll
            while not env.receiver.at(HOOK):
                assert time.monotonic() < deadline, "not delivered before the poll"
                await asyncio.sleep(0.01)
        finally:
            stop.set()
            await task

    with_env(tmp_path, body)


def test_a_timed_out_message_is_sent_again_with_the_same_id(tmp_path: Path) -> None:
    """The receiver takes the first message but answers after the sender's timeout: the retry
    carries the same webhook-id, and after dropping repeats each finding arrived once."""

    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(i, rule=f"r{i}") for i in (1, 2, 3)])
        env.receiver.script(HOOK, [Reply(200, delay=5.0)])
        worker = env.worker(env.sink(timeout="1s"))
        started = time.monotonic()
        await env.idle(worker)
        assert time.monotonic() - started < 4.0  # one timeout, not the receiver's delay
        reqs = env.receiver.at(HOOK)
        assert [r.headers["webhook-id"] for r in reqs] == [
            message_id("trigger", [k]) for k in (keys[0], *keys)
        ]
        assert all(r.signature_valid for r in reqs)
        assert reqs[1].duplicate
        assert reqs[0].headers["webhook-timestamp"] <= reqs[1].headers["webhook-timestamp"]
        assert Counter(finding_keys(env.receiver.processed(HOOK)))[keys[0]] == 2
        assert finding_keys(env.receiver.unique(HOOK)) == keys  # exactly once, in order
        first = await env.store.attempts((await env.row(keys[0])).id)
        assert [a.status for a in first] == ["failed", "delivered"]
        assert first[0].error is not None
        assert "Timeout" in first[0].error
        assert await env.store.pending_outbox("soc") == []

    with_env(tmp_path, body)


def test_a_receiver_down_for_a_while_gets_everything_in_order(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        findings = [
            rule_finding(1, rule="a"),
            rule_finding(2, rule="b"),
            integrity_finding(3, env.clock.now),
            rule_finding(4, rule="a"),
        ]
        keys = await env.add(findings)
        worker = env.worker(env.sink())
        await env.receiver.stop()
        for attempt in range(1, 5):
            t0 = env.clock.now
            assert await worker.step() == 0.0
            head = await env.row(keys[0])
            assert head.attempts == attempt
            ceiling = 0.01 * 2 ** (attempt - 1)  # capped exponential backoff with jitter
            assert ceiling / 2 <= (head.next_attempt_at - t0).total_seconds() <= ceiling
            assert head.last_error is not None
            assert "http" not in head.last_error.lower()  # the class only, never the URL
            delay = await worker.step()  # not due yet: nothing is sent, nothing jumps ahead
            assert delay is not None
            assert 0 < delay <= ceiling
            env.clock.advance(delay)
        assert [(await env.row(k)).attempts for k in keys[1:]] == [0, 0, 0]
        assert env.receiver.requests == []
        assert [a.status for a in await env.store.attempts(head.id)] == ["failed"] * 4

        await env.receiver.start()  # back, on the same port
        await env.idle(worker)
        assert finding_keys(env.receiver.unique(HOOK)) == keys  # everything, in order
        assert all(r.signature_valid for r in env.receiver.requests)
        assert await env.store.pending_outbox("soc") == []

    with_env(tmp_path, body)


# --- answers: 500, 429, 410, 400; giving up; replay -------------------------------------


def test_500_is_retried_until_accepted(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([rule_finding(1)])
        env.receiver.script(HOOK, [500, 503, 200])
        await env.idle(env.worker(env.sink()))
        assert [r.status for r in env.receiver.at(HOOK)] == [500, 503, 200]
        assert len({r.headers["webhook-id"] for r in env.receiver.at(HOOK)}) == 1
        attempts = await env.store.attempts((await env.row(key)).id)
        assert [(a.status, a.error) for a in attempts] == [
            ("failed", "HTTP 500"),
            ("failed", "HTTP 503"),
            ("delivered", None),
        ]

    with_env(tmp_path, body)


def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([rule_finding(1)])
        env.receiver.script(HOOK, [Reply(429, retry_after="120")])
        worker = env.worker(env.sink())
        sent_at = env.clock.now
        assert await worker.step() == 0.0
        row = await env.row(key)
        assert row.next_attempt_at >= sent_at + timedelta(seconds=120)
        assert row.last_error == "HTTP 429"
        env.clock.advance(60)
        delay = await worker.step()
        assert delay is not None
        assert delay >= 59  # still waiting, nothing sent
        assert len(env.receiver.requests) == 1
        env.clock.advance(delay)
        assert await worker.step() == 0.0
        assert [r.status for r in env.receiver.at(HOOK)] == [429, 200]
        assert (await env.row(key)).delivered_at == env.clock.now

    with_env(tmp_path, body)


@pytest.mark.parametrize(
    ("type_", "path", "reply"),
    [
        ("slack", SLACK, Reply(500)),
        ("slack", SLACK, Reply(429, retry_after="120")),
        ("pagerduty", PAGERDUTY, Reply(500)),
        ("alertmanager", ALERTMANAGER, Reply(503)),
    ],
)
def test_other_formats_retry_a_failed_message_until_accepted(
    tmp_path: Path, type_: str, path: str, reply: Reply
) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([health_finding(env.clock.now)], "out")
        env.receiver.script(path, [reply])
        worker = env.worker(env.sink(type_, "out"))
        sent_at = env.clock.now
        assert await worker.step() == 0.0
        row = await env.row(key, "out")
        assert row.last_error == f"HTTP {reply.status}"
        wait = (row.next_attempt_at - sent_at).total_seconds()
        if reply.retry_after is None:
            assert 0.005 <= wait <= 0.01  # the first backoff step of retry_base, with jitter
        else:
            assert wait == pytest.approx(120)  # Retry-After, longer than the backoff
        delay = await worker.step()  # not due yet: nothing is sent
        assert delay is not None
        assert 0 < delay <= wait
        assert len(env.receiver.requests) == 1
        env.clock.advance(delay)
        assert await worker.step() == 0.0
        assert await worker.step() is None

        first, retry = env.receiver.at(path)
        assert (first.status, first.processed, retry.processed) == (reply.status, False, True)
        assert retry.keys == first.keys  # the same message again
        (delivered,) = env.receiver.unique(path)  # exactly once, repeats dropped by key
        assert delivered is retry
        if type_ == "pagerduty":
            assert retry.keys == (f"{key}/trigger",)
        elif type_ == "alertmanager":
            assert retry.keys == (f"{key}/firing",)
        row = await env.row(key, "out")
        assert row.delivered_at == env.clock.now
        attempts = await env.store.attempts(row.id)
        assert [(a.status, a.error) for a in attempts] == [
            ("failed", f"HTTP {reply.status}"),
            ("delivered", None),
        ]

    with_env(tmp_path, body)


def test_410_disables_the_sink_and_keeps_the_rows(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(1, rule="a"), rule_finding(2, rule="b")])
        env.receiver.script(HOOK, [], then=410)
        sink = env.sink()
        worker = env.worker(sink)
        assert await worker.step() == 0.0
        assert worker.disabled is not None
        assert "410" in worker.disabled
        assert "127.0.0.1" in worker.disabled
        assert HOOK not in worker.disabled
        assert await worker.step() is None
        assert await worker.drain(time.monotonic() + 5) == 2  # still waiting, not lost
        assert len(env.receiver.requests) == 1
        assert [o.dedup_key for o in await env.store.pending_outbox("soc")] == keys
        assert await env.store.dead_letters("soc") == []

        env.receiver.script(HOOK, [])  # the configuration is fixed; the monitor restarts
        await env.idle(env.worker(sink))
        assert finding_keys(env.receiver.unique(HOOK)) == keys
        assert await env.store.pending_outbox("soc") == []

    with_env(tmp_path, body)


def test_400_is_dead_lettered_at_once_and_replay_delivers_it(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(1, rule="a"), rule_finding(2, rule="b")])
        env.receiver.script(HOOK, [400])
        worker = env.worker(env.sink())
        assert await worker.step() == 0.0
        dead = await env.row(keys[0])
        assert dead.dead_at == env.clock.now
        assert dead.last_error == "refused: HTTP 400"
        assert [d.id for d in await env.store.dead_letters("soc")] == [dead.id]
        assert await worker.step() == 0.0  # the next row is not held back by a dead one
        assert await worker.step() is None
        assert [r.status for r in env.receiver.at(HOOK)] == [400, 200]

        assert await env.store.replay(dead.id, now=env.clock.now)
        assert await env.store.dead_letters("soc") == []
        await env.idle(worker)
        assert finding_keys(env.receiver.unique(HOOK)) == [keys[1], keys[0]]
        assert (await env.row(keys[0])).delivered_at is not None

    with_env(tmp_path, body)


@pytest.mark.parametrize(
    ("corrupt", "why"),
    [
        (lambda p: {**p, "severity": "HIGH"}, "severity: not one of info, low"),
        (lambda p: {k: v for k, v in p.items() if k != "created_at"}, "created_at: missing"),
        (lambda p: {**p, "kind": "test"}, "kind: a test finding is sent at once"),
        (lambda p: {**p, "unmet": [{"field": "san"}]}, "unmet[0].expected: missing"),
        (lambda p: "not an object", "finding: expected an object"),
    ],
)
def test_an_unreadable_row_is_dead_lettered_and_holds_nothing_back(
    tmp_path: Path, corrupt: Callable[[Any], Any], why: str
) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(i, rule="a") for i in (1, 2, 3)])
        bad = await env.row(keys[1])
        async with env.store.engine.begin() as conn:
            await conn.execute(
                OUTBOX.update().where(OUTBOX.c.id == bad.id).values(payload=corrupt(bad.payload))
            )
        worker = env.worker(env.sink(group_window="30s"))
        env.clock.advance(31)
        await env.idle(worker)
        dead = await env.row(keys[1])
        assert dead.dead_at is not None
        assert dead.last_error is not None
        assert dead.last_error.startswith(f"cannot be read: {why}")
        assert [d.id for d in await env.store.dead_letters("soc")] == [dead.id]
        # the group stops before the unreadable row; the row after it goes on its own
        assert [finding_keys([r]) for r in env.receiver.at(HOOK)] == [[keys[0]], [keys[2]]]

    with_env(tmp_path, body)


def test_max_attempts_dead_letters(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([rule_finding(1)])
        env.receiver.script(HOOK, [], then=500)
        worker = env.worker(env.sink(), alerts={"max_attempts": 3})
        await env.idle(worker)
        assert len(env.receiver.requests) == 3
        row = await env.row(key)
        assert row.dead_at is not None
        assert row.last_error == "gave up after 3 attempts: HTTP 500"
        statuses = [a.status for a in await env.store.attempts(row.id)]
        assert statuses == ["failed", "failed", "failed", "dead"]
        assert [d.id for d in await env.store.dead_letters()] == [row.id]

        env.receiver.script(HOOK, [])
        assert await env.store.replay(row.id, now=env.clock.now)
        await env.idle(worker)
        assert (await env.row(key)).delivered_at is not None

    with_env(tmp_path, body)


def test_max_age_dead_letters_and_replay_still_delivers(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (key,) = await env.add([rule_finding(1)])
        env.receiver.script(HOOK, [], then=503)
        worker = env.worker(env.sink(), alerts={"max_age": "1m"})
        assert await worker.step() == 0.0
        env.clock.advance(61)
        assert await worker.step() == 0.0
        row = await env.row(key)
        assert row.dead_at is not None
        assert row.last_error is not None
        assert row.last_error.startswith("gave up: older than 0:01:00")
        assert len(env.receiver.requests) == 1  # given up without another try

        # an operator replays it once the receiver works: it is delivered, not dead again
        env.receiver.script(HOOK, [])
        assert await env.store.replay(row.id, now=env.clock.now)
        await env.idle(worker)
        row = await env.row(key)
        assert row.dead_at is None
        assert row.delivered_at is not None
        assert finding_keys(env.receiver.unique(HOOK)) == [key]

    with_env(tmp_path, body)


@pytest.mark.parametrize("cause", ["refused", "max_attempts", "max_age"])
def test_a_dead_letter_is_counted_once(tmp_path: Path, cause: str) -> None:
    async def body(env: Env) -> None:
        registry = CollectorRegistry()

        def count(outcome: str) -> float | None:
            return registry.get_sample_value(DELIVERIES, {"sink": "soc", "outcome": outcome})

        (key,) = await env.add([rule_finding(1)])
        if cause == "refused":
            env.receiver.script(HOOK, [400])
        else:
            env.receiver.script(HOOK, [], then=503)
        alerts = {"max_attempts": 3} if cause == "max_attempts" else {"max_age": "1m"}
        worker = env.worker(env.sink(), alerts=alerts, metrics=AlertMetrics(registry))
        assert count("dead_lettered") == 0  # shown before anything happens
        if cause == "max_age":
            assert await worker.step() == 0.0  # one failure, then the row grows too old
            env.clock.advance(61)
        await env.idle(worker)
        row = await env.row(key)
        assert row.dead_at is not None
        assert await worker.step() is None
        assert count("dead_lettered") == 1
        assert count("failed") == {"refused": 0, "max_attempts": 3, "max_age": 1}[cause]
        assert count("delivered") == 0

        # replayed and delivered: counted delivered, the dead letter still counted once
        env.receiver.script(HOOK, [])
        assert await env.store.replay(row.id, now=env.clock.now)
        await env.idle(worker)
        assert (await env.row(key)).delivered_at is not None
        assert (count("dead_lettered"), count("delivered")) == (1, 1)

    with_env(tmp_path, body)


# --- grouping and rate limit -------------------------------------------------------------


def test_triggers_of_a_rule_within_the_window_go_out_as_one_message(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        a1 = await env.add([rule_finding(1, rule="a"), rule_finding(2, rule="a")])
        env.clock.advance(1)
        b = await env.add([rule_finding(3, rule="b")])
        env.clock.advance(1)
        a2 = await env.add([rule_finding(4, rule="a"), rule_finding(5, rule="a")])
        env.clock.advance(1)
        worker = env.worker(env.sink(group_window="30s"))
        delay = await worker.step()  # the group's window is still open: wait for the rest
        assert delay == pytest.approx(27.0)
        assert env.receiver.requests == []
        env.clock.advance(30)
        await env.idle(worker)
        reqs = env.receiver.at(HOOK)
        # a, then b, then the rest of a: a group never jumps over another rule's row
        assert [finding_keys([r]) for r in reqs] == [a1, b, a2]
        assert [(r.json["rule"], r.json["count"]) for r in reqs] == [("a", 2), ("b", 1), ("a", 2)]
        assert reqs[0].headers["webhook-id"] == message_id("trigger", a1)
        for key in (*a1, *b, *a2):
            row = await env.row(key)
            assert row.delivered_at is not None
            assert [a.status for a in await env.store.attempts(row.id)] == ["delivered"]

    with_env(tmp_path, body)


def test_a_storm_is_one_message_per_group_max(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(i, rule="a") for i in range(GROUP_MAX + 3)])
        worker = env.worker(env.sink(group_window="10s"))
        assert await worker.step() == 0.0  # a full group does not wait for its window
        assert (await worker.step() or 0) > 0  # the 3 left over wait for theirs
        env.clock.advance(10)
        await env.idle(worker)
        counts = [r.json["count"] for r in env.receiver.at(HOOK)]
        assert counts == [GROUP_MAX, 3]
        assert finding_keys(env.receiver.unique(HOOK)) == keys
        assert await env.store.pending_outbox("soc") == []

    with_env(tmp_path, body)


def test_rate_limit_holds_back_messages_beyond_the_burst(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        # 2 a minute, burst 2: the third message waits half a minute
        await env.add([rule_finding(i, rule=f"r{i}") for i in range(3)])
        worker = env.worker(env.sink(rate_limit_per_minute=2))
        assert await worker.step() == 0.0
        assert await worker.step() == 0.0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await worker.step()
        assert len(env.receiver.requests) == 2
        assert len(await env.store.pending_outbox("soc")) == 1

    with_env(tmp_path, body)


def test_rate_limit_spaces_messages_after_the_burst(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        # 600 a minute: a burst of 10, then one every 0.1 s
        keys = await env.add([rule_finding(i, rule=f"r{i}") for i in range(14)])
        worker = env.worker(env.sink(rate_limit_per_minute=600))
        started = time.monotonic()
        await env.idle(worker)
        assert time.monotonic() - started >= 0.35
        arrivals = [r.at for r in env.receiver.at(HOOK)]
        assert len(arrivals) == 14
        assert finding_keys(env.receiver.unique(HOOK)) == keys

    with_env(tmp_path, body)


# --- resolves ----------------------------------------------------------------------------


def test_pagerduty_rule_findings_are_not_grouped_so_each_resolve_closes_its_own(
    tmp_path: Path,
) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([rule_finding(i, rule="a") for i in range(3)], "pd")
        worker = env.worker(env.sink("pagerduty", "pd", group_window="10s"))
        env.clock.advance(10)
        await env.idle(worker)
        triggers = env.receiver.at(PAGERDUTY)
        assert [(r.json["event_action"], r.json["dedup_key"]) for r in triggers] == [
            ("trigger", k) for k in keys
        ]
        assert await env.store.resolve_finding(
            await env.finding_id(keys[1]), "oncall", "benign", at=env.clock.now
        )
        await env.idle(worker)
        (resolve,) = env.receiver.at(PAGERDUTY)[3:]
        assert (resolve.json["event_action"], resolve.json["dedup_key"]) == ("resolve", keys[1])

    with_env(tmp_path, body)


def test_pagerduty_resolve_closes_what_the_trigger_opened(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        findings = [integrity_finding(9, env.clock.now), health_finding(env.clock.now)]
        keys = await env.add(findings, "pd")
        worker = env.worker(env.sink("pagerduty", "pd"))
        await env.idle(worker)
        triggers = env.receiver.at(PAGERDUTY)
        assert [(r.json["event_action"], r.json["dedup_key"]) for r in triggers] == [
            ("trigger", k) for k in keys
        ]
        assert all(r.status == 202 for r in triggers)
        assert triggers[0].json["routing_key"] == ROUTING_KEY
        assert triggers[0].json["payload"]["severity"] == "critical"

        env.clock.advance(5)
        for key in reversed(keys):
            assert await env.store.resolve_finding(
                await env.finding_id(key), "monitor", "cleared", at=env.clock.now
            )
        await env.idle(worker)
        resolves = env.receiver.at(PAGERDUTY)[2:]
        assert [r.json for r in resolves] == [
            {"routing_key": ROUTING_KEY, "dedup_key": k, "event_action": "resolve"}
            for k in reversed(keys)
        ]
        assert len(env.receiver.unique(PAGERDUTY)) == 4
        for key in keys:
            assert (await env.row(key, "pd", "resolve")).delivered_at is not None

    with_env(tmp_path, body)


def test_alertmanager_is_reminded_of_active_alerts_and_told_of_resolves(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        keys = await env.add(
            [health_finding(env.clock.now), integrity_finding(4, env.clock.now)], "am"
        )
        worker = env.worker(env.sink("alertmanager", "am"), resend_after=timedelta(minutes=1))
        await env.idle(worker)
        sent = env.receiver.at(ALERTMANAGER)
        assert len(sent) == 2
        assert [a["labels"]["dedup_key"] for r in sent for a in r.json] == keys
        now = env.clock.unix()
        assert all(alert_state(a, now) == "firing" for r in sent for a in r.json)

        env.clock.advance(61)
        assert await worker.step() is None  # nothing pending, but a reminder went out
        (reminder,) = env.receiver.at(ALERTMANAGER)[2:]
        assert sorted(a["labels"]["dedup_key"] for a in reminder.json) == sorted(keys)
        assert all(alert_state(a, env.clock.unix()) == "firing" for a in reminder.json)
        assert reminder.duplicate  # nothing new to Alertmanager: the same alerts, still firing
        env.clock.advance(10)
        assert await worker.step() is None
        assert len(env.receiver.at(ALERTMANAGER)) == 3  # not before resend_after

        assert await env.store.resolve_finding(
            await env.finding_id(keys[0]), "monitor", at=env.clock.now
        )
        env.clock.advance(55)
        await env.idle(worker)
        reqs = env.receiver.at(ALERTMANAGER)[3:]
        # the reminder names only the alert still active, then the resolve ends the other
        assert [[a["labels"]["dedup_key"] for a in r.json] for r in reqs] == [[keys[1]], [keys[0]]]
        (resolved,) = reqs[1].json
        ends = datetime.fromisoformat(resolved["endsAt"].replace("Z", "+00:00"))
        assert ends <= env.clock.now
        assert reqs[1].new_keys == (f"{keys[0]}/resolved",)

    with_env(tmp_path, body)


@pytest.mark.parametrize(
    ("configured", "posted"),
    [
        ("", ALERTMANAGER),
        ("/", ALERTMANAGER),
        ("/alertmanager/", "/alertmanager" + ALERTMANAGER),
        (ALERTMANAGER, ALERTMANAGER),
    ],
)
def test_alertmanager_is_configured_by_its_base_url(
    tmp_path: Path, configured: str, posted: str
) -> None:
    async def body(env: Env) -> None:
        keys = await env.add([health_finding(env.clock.now)], "am")
        sink = env.sink("alertmanager", "am", url=env.receiver.url(configured))
        await env.idle(env.worker(sink))
        (req,) = env.receiver.requests
        assert (req.full_path, req.status) == (posted, 200)
        assert [a["labels"]["dedup_key"] for a in req.json] == keys
        assert (await env.row(keys[0], "am")).delivered_at is not None

    with_env(tmp_path, body)


# --- Slack -------------------------------------------------------------------------------


def test_slack_message_is_readable_and_escapes_hostile_values(tmp_path: Path) -> None:
    hostile = "<!channel> <https://evil.example|click here> & <@U123>"

    async def body(env: Env) -> None:
        f = finding_for(cert_record(LOG, 42), rule="acme-release")
        f = Finding(
            kind=f.kind,
            severity=f.severity,
            dedup_key=f.dedup_key,
            rule=f.rule,
            log=f.log,
            index=f.index,
            matched=(("san", hostile),),
            detail="entry 42 signed by an unexpected workflow",
            created_at=f.created_at,
        )
        await env.add([f], "chat")
        await env.idle(env.worker(env.sink("slack", "chat")))
        (req,) = env.receiver.at(SLACK)
        assert req.full_path == SLACK + SLACK_SECRET_PATH
        text = req.body.decode()
        assert "acme-release" in req.json["text"]
        assert f"{LOG} #42" in req.json["text"]
        assert "acme-release" in text
        assert f"{LOG} #42" in text
        assert "<!channel>" not in text
        assert "<@U123>" not in text
        assert "<https://evil.example" not in text
        assert "&lt;!channel&gt;" in text
        assert req.json["unfurl_links"] is False

    with_env(tmp_path, body)


# --- secrets -----------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def monitor_records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``monitor`` loggers (a handler of our own: ``setup_logging``, if
    another test called it, stops propagation to the root)."""
    logger = logging.getLogger("monitor")
    handler = _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


SECRETS = (
    SECRET,
    SECRET.removeprefix("whsec_"),
    SLACK_SECRET_PATH,
    SLACK_SECRET_PATH.rsplit("/", 1)[1],
    ROUTING_KEY,
    AM_USER,
    AM_PASSWORD,
    AM_PREFIX,
)


def test_secrets_appear_in_no_log_record_and_no_stored_error(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        sinks = {
            "soc": env.sink(timeout="1s"),
            "chat": env.sink("slack", "chat"),
            "pd": env.sink("pagerduty", "pd"),
            "am": env.sink("alertmanager", "am", url=env.am_url()),
        }
        keys = await env.add(
            [rule_finding(i, rule=f"r{i}") for i in range(3)]
            + [integrity_finding(1, env.clock.now)],
            *sinks,
        )
        workers = {name: env.worker(s, alerts={"max_attempts": 4}) for name, s in sinks.items()}
        with monitor_records() as records:
            env.receiver.script(HOOK, [500, Reply(200, delay=3.0), 400])
            env.receiver.script(SLACK, [429, 500], then=410)
            env.receiver.script(PAGERDUTY, [400, 500])
            env.receiver.script(ALERTMANAGER, [500, 400])
            for name, worker in workers.items():
                await worker.step()
                if name != "chat":
                    await env.receiver.stop()  # connection errors quote URLs in aiohttp
                    env.clock.advance(1)
                    await worker.step()
                    await env.receiver.start()
                await env.idle(worker)
            pd = await env.store.resolve_finding(
                await env.finding_id(keys[-1]), "monitor", at=env.clock.now
            )
            assert pd
            await env.idle(workers["pd"])
        messages = {r.getMessage() for r in records}
        assert "alert delivered" in messages
        assert "alert sink disabled: 410 Gone" in messages
        assert any(m.startswith("alert dead-lettered") for m in messages)
        assert any(m.startswith("alert delivery failed") for m in messages)
        logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in records)
        async with env.store.engine.connect() as conn:
            errors = [
                *(await conn.execute(select(OUTBOX.c.last_error))).scalars(),
                *(await conn.execute(select(ATTEMPTS.c.error))).scalars(),
            ]
        stored = "\n".join(e for e in errors if e)
        assert "HTTP 500" in stored
        assert "refused: HTTP 400" in stored
        am = env.receiver.at(ALERTMANAGER)
        assert {r.full_path for r in am} == {AM_PREFIX + ALERTMANAGER}
        assert [r.status for r in am][:2] == [500, 400]
        assert all(r.headers["authorization"].startswith("Basic ") for r in am)
        for secret in SECRETS:
            assert secret not in logged
            assert secret not in stored

    with_env(tmp_path, body)


def test_secrets_appear_in_no_metric(tmp_path: Path) -> None:
    """Every sink type through success, failure (an answer and a connection error) and a
    dead letter: the exposition text names sinks, outcomes and reasons, never a secret."""

    async def body(env: Env) -> None:
        registry = CollectorRegistry()
        metrics = AlertMetrics(registry)
        sinks = [
            env.sink(),
            env.sink("slack", "chat"),
            env.sink("pagerduty", "pd"),
            env.sink("alertmanager", "am", url=env.am_url()),
        ]
        names = [s.name for s in sinks]
        await env.add([rule_finding(i, rule=f"r{i}") for i in range(3)], *names)
        for path in FORMATS:
            env.receiver.script(path, [500, 400])  # the first row fails, then is refused
        for sink in sinks:
            worker = env.worker(sink, metrics=metrics)
            assert await worker.step() == 0.0  # 500
            env.clock.advance(1)
            assert await worker.step() == 0.0  # 400: dead-lettered
            await env.receiver.stop()
            assert await worker.step() == 0.0  # a connection error
            await env.receiver.start()
            await env.idle(worker)
        exposed = generate_latest(registry).decode()
        for name in names:
            counts = {
                outcome: registry.get_sample_value(DELIVERIES, {"sink": name, "outcome": outcome})
                for outcome in ("delivered", "failed", "dead_lettered")
            }
            assert counts == {"delivered": 2, "failed": 2, "dead_lettered": 1}, name
            assert f'sink="{name}"' in exposed
        assert 'reason="HTTP 500"' in exposed
        assert 'reason="ClientConnectorError"' in exposed
        for secret in SECRETS:
            assert secret not in exposed
        assert ALERTMANAGER not in exposed
        assert SLACK not in exposed

    with_env(tmp_path, body)


def test_a_retried_group_keeps_its_members_and_its_id(tmp_path: Path) -> None:
    """A group that failed is retried as the same message (the same webhook-id), even when
    more triggers of its rule were written within its window since: they go out after it."""

    async def body(env: Env) -> None:
        first = await env.add([rule_finding(1, rule="a")])
        env.receiver.script(HOOK, [Reply(200, delay=5.0)])  # taken, but answered too late
        worker = env.worker(env.sink(group_window="30s", timeout="1s"))
        assert await worker.drain(time.monotonic() + 10) == 1  # once: no waiting for windows
        env.clock.advance(2)
        later = await env.add([rule_finding(2, rule="a")])
        await env.idle(worker)
        reqs = env.receiver.at(HOOK)
        assert [finding_keys([r]) for r in reqs] == [first, first, later]
        assert reqs[0].headers["webhook-id"] == reqs[1].headers["webhook-id"]
        assert finding_keys(env.receiver.unique(HOOK)) == first + later

    with_env(tmp_path, body)


def test_alertmanager_reminders_are_not_held_up_by_a_waiting_row(tmp_path: Path) -> None:
    async def body(env: Env) -> None:
        (active,) = await env.add([health_finding(env.clock.now)], "am")
        worker = env.worker(env.sink("alertmanager", "am"), resend_after=timedelta(minutes=1))
        await env.idle(worker)
        env.receiver.script(ALERTMANAGER, [Reply(429, retry_after="600")])
        await env.add([integrity_finding(1, env.clock.now)], "am")
        assert await worker.step() == 0.0  # 429: the new alert waits ten minutes
        delay = await worker.step()
        assert delay is not None
        assert 0 < delay <= 60  # ... but the active alert must be sent again before then
        env.clock.advance(delay)
        await worker.step()
        reminder = env.receiver.at(ALERTMANAGER)[-1]
        assert [a["labels"]["dedup_key"] for a in reminder.json] == [active]
        assert alert_state(reminder.json[0], env.clock.unix()) == "firing"

    with_env(tmp_path, body)
