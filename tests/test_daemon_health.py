"""monitor.daemon.health: ``health`` findings raised once per episode of a condition (a log
unreachable, stalled or lagging, a sink failing), resolved when it clears, routed like any
finding, carried across a restart, and shown as a metric; a resolved finding queues a resolve
for every sink that had its trigger. End to end, the daemon sends a receiver on loopback the
trigger and then the resolve of an outage, and reports a sink that answered 410 Gone. Time is
a fake clock, never a sleep; findings live in a real store, every test once on SQLite and once
on PostgreSQL; unreachable logs are the simulator failing every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.routing import Routing
from monitor.config.models import HealthSettings, SinkSettings
from monitor.core.errors import TransientLogError
from monitor.core.findings import Finding, FindingKind, FindingState, HealthType, Severity
from monitor.core.metrics import DaemonMetrics
from monitor.core.status import LogStatus
from monitor.daemon import PassContext, PassResult, RekorV1Source, catch_up
from monitor.daemon.health import HealthMonitor
from monitor.daemon.service import Monitor
from monitor.daemon.tailer import Backoff, Tailer
from monitor.logclient.http import HttpPolicy, LogHttp
from monitor.logclient.v1 import RekorV1Client
from monitor.rules.engine import RuleEngine
from monitor.storage import FindingQuery, StoredFinding
from monitor.storage.batch import OutboxSpec
from monitor.storage.store import Store
from tests import storage_reads as reads
from tests.alert_receivers import (
    ALERTMANAGER,
    HOOK,
    PAGERDUTY,
    Receiver,
    Reply,
    alert_state,
    finding_keys,
)
from tests.daemon_support import (
    ENGINES,
    MALLORY,
    RULES,
    T0,
    Clock,
    database_url,
    pg_dbs,
    until,
    write_config,
)
from tests.simlog import FAST, Harness, harness, run

__all__ = ["pg_dbs"]

LOG = "v1-sim"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0"

# unreachable after 1m; stalled after 2m; lagging beyond 100 entries or for 5m
HEALTH = HealthSettings.model_validate(
    {"unreachable_after": "1m", "stall_after": "2m", "lag_entries": 100, "lag_seconds": "5m"}
)
# one condition at a time: the others' thresholds out of reach
STALL_ONLY = HealthSettings.model_validate(
    {"stall_after": "2m", "lag_entries": 1_000_000, "lag_seconds": "30d"}
)
LAG_ONLY = HealthSettings.model_validate(
    {"stall_after": "30d", "lag_entries": 100, "lag_seconds": "5m"}
)
UNREACHABLE_ONLY_DOC: dict[str, Any] = {
    "unreachable_after": "1m",
    "stall_after": "30d",
    "lag_entries": 1_000_000,
    "lag_seconds": "30d",
}
UNREACHABLE_ONLY = HealthSettings.model_validate(UNREACHABLE_ONLY_DOC)


def sink(name: str, **filters: Any) -> SinkSettings:
    return SinkSettings.model_validate(
        {"name": name, "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET}
        | filters
    )


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each engine (PostgreSQL: required under CI, else skipped if absent)."""
    return database_url(request.param, tmp_path, lambda: request.getfixturevalue("pg_dbs"), "m")


async def open_store(url: str) -> Store:
    return await Store.open(url)


async def health(store: Store) -> list[StoredFinding]:
    """Every health finding, oldest first."""
    page = await store.findings(FindingQuery(kinds=(FindingKind.HEALTH,), limit=1000))
    return sorted(page.items, key=lambda f: f.finding.id or 0)


async def of_type(store: Store, t: HealthType) -> list[StoredFinding]:
    return [f for f in await health(store) if f.finding.type == str(t)]


async def sinks_of(store: Store, f: StoredFinding) -> list[str]:
    return sorted(o.sink for o in await reads.outbox_for(store, f.finding.dedup_key))


def seen(status: LogStatus, cursor: int, size: int, now: float) -> None:
    """A pass that ended at ``cursor`` with the log's checkpoint at ``size``."""
    status.record_pass(PassResult(0, 0, cursor, size), now)


def failing_since(status: LogStatus) -> float | None:
    return status.failing_since


def assert_resolved_by_monitor(f: StoredFinding) -> None:
    assert f.finding.state is FindingState.RESOLVED
    assert f.state_changed_by == "monitor"


# -- log_unreachable ---------------------------------------------------------------------------


def test_log_unreachable_is_one_finding_per_outage(tmp_path: Path, db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        async with harness(tmp_path, entries=40, shards=1) as h:
            store = await open_store(db_url)
            try:
                policy = replace(FAST, max_attempts=2)
                http = LogHttp(
                    h.v1.log.base_url, h.session, log="v1", metrics=h.metrics, policy=policy
                )
                client = RekorV1Client(http, h.v1.log)
                cas = h.trust.certificate_authorities
                ctx = PassContext(LOG, store, RuleEngine.compile([]), cas)
                status = LogStatus(LOG)
                tailer = Tailer(
                    LOG,
                    lambda: catch_up(RekorV1Source(client), ctx),
                    status,
                    backoff=Backoff(base=0.01, cap=0.05),
                    clock=clock,
                )
                monitor = HealthMonitor(store, UNREACHABLE_ONLY, Routing(), clock=clock)

                assert await tailer.step() is None
                assert (status.cursor, status.log_size, status.failing_since) == (40, 40, None)

                await h.admin("faults", {"rate_5xx": 1.0})
                down_at = clock.advance(10)
                assert await tailer.step() is not None  # a backoff: the pass failed
                assert failing_since(status) == down_at
                assert status.last_error is not None
                clock.advance(59)
                assert await tailer.step() is not None
                assert failing_since(status) == down_at  # the outage began at the first failure
                await monitor.evaluate([status], [])
                assert await health(store) == []  # 59s: not yet

                clock.advance(1)
                await monitor.evaluate([status], [])
                (f,) = await health(store)
                assert f.finding.type == str(HealthType.LOG_UNREACHABLE)
                assert (f.finding.log, f.finding.severity) == (LOG, Severity.HIGH)
                assert f.finding.state is FindingState.OPEN
                # a classified reason, not the error text (URLs, SQL): the detail goes to sinks
                assert f.finding.detail == "every pass has failed for 60s (log_server_error)"
                assert monitor.open_conditions() == {(HealthType.LOG_UNREACHABLE, LOG)}

                for _ in range(3):  # still down: the same episode
                    clock.advance(30)
                    await tailer.step()
                    await monitor.evaluate([status], [])
                assert [x.finding.id for x in await health(store)] == [f.finding.id]

                await h.admin("faults", {"rate_5xx": 0.0})
                clock.advance(5)
                assert await tailer.step() is None
                assert failing_since(status) is None
                await monitor.evaluate([status], [])
                (done,) = await health(store)
                assert done.finding.id == f.finding.id
                assert_resolved_by_monitor(done)
                assert monitor.open_conditions() == set()
                await monitor.evaluate([status], [])  # resolved once, left alone
                assert [x.finding.state for x in await health(store)] == [FindingState.RESOLVED]

                await h.admin("faults", {"rate_5xx": 1.0})  # a second outage
                clock.advance(100)
                await tailer.step()
                clock.advance(60)
                await monitor.evaluate([status], [])
                first, second = await health(store)
                assert first.finding.id == f.finding.id
                assert first.finding.state is FindingState.RESOLVED
                assert second.finding.type == str(HealthType.LOG_UNREACHABLE)
                assert second.finding.state is FindingState.OPEN
                assert second.finding.dedup_key != first.finding.dedup_key
            finally:
                await store.close()

    run(body)


# -- log_stalled -------------------------------------------------------------------------------


def test_stalled_with_entries_left_to_read(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, STALL_ONLY, Routing(), clock=clock)
            status = LogStatus(LOG)
            seen(status, 100, 500, T0)
            seen(status, 100, 510, clock.advance(60))  # the log grows; the cursor does not
            clock.advance(59)
            await monitor.evaluate([status], [])
            assert await health(store) == []

            clock.advance(1)  # 2m without progress
            await monitor.evaluate([status], [])
            (f,) = await health(store)
            assert f.finding.type == str(HealthType.LOG_STALLED)
            assert f.finding.log == LOG
            assert "no verified progress" in f.finding.detail
            assert "410 entries" in f.finding.detail
            clock.advance(60)
            await monitor.evaluate([status], [])
            assert len(await health(store)) == 1

            seen(status, 200, 520, clock.advance(10))  # progress resumes
            await monitor.evaluate([status], [])
            (done,) = await health(store)
            assert_resolved_by_monitor(done)
        finally:
            await store.close()

    run(body)


def test_stalled_checkpoint_but_not_for_a_frozen_shard(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, STALL_ONLY, Routing(), clock=clock)
            active, retired = LogStatus(LOG), LogStatus("v1-retired", frozen=True)
            for t in (0, 60, 119):  # caught up every time, the checkpoint never changes
                seen(active, 500, 500, T0 + t)
                seen(retired, 300, 300, T0 + t)
            clock.advance(119)
            await monitor.evaluate([active, retired], [])
            assert await health(store) == []

            clock.advance(1)
            await monitor.evaluate([active, retired], [])
            (f,) = await health(store)
            assert (f.finding.type, f.finding.log) == (str(HealthType.LOG_STALLED), LOG)
            assert "checkpoint has not changed" in f.finding.detail
            assert "size 500" in f.finding.detail

            clock.advance(3600)  # a frozen shard never counts as stalled
            seen(retired, 300, 300, clock())
            await monitor.evaluate([active, retired], [])
            assert [x.finding.log for x in await health(store)] == [LOG]

            seen(active, 510, 510, clock.advance(10))  # the log grows again
            await monitor.evaluate([active, retired], [])
            (done,) = await health(store)
            assert_resolved_by_monitor(done)
            assert monitor.open_conditions() == set()
        finally:
            await store.close()

    run(body)


def test_time_caught_up_is_not_time_without_progress(db_url: str) -> None:
    """A quiet log, fully processed for an hour, then a pass that cannot move (it stopped at a
    lie): the stall is counted from when the monitor was last caught up, not from when its
    cursor last moved an hour ago."""

    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, STALL_ONLY, Routing(), clock=clock)
            status = LogStatus(LOG)
            seen(status, 500, 500, T0)
            for _ in range(60):  # a quiet hour: caught up at every poll, the cursor still
                seen(status, 500, 500, clock.advance(60))
            seen(status, 500, 520, clock.advance(30))  # new entries, and no progress
            await monitor.evaluate([status], [])
            assert await of_type(store, HealthType.LOG_STALLED) == []

            clock.advance(120)
            await monitor.evaluate([status], [])
            (f,) = await of_type(store, HealthType.LOG_STALLED)
            assert "no verified progress for 150s" in f.finding.detail
        finally:
            await store.close()

    run(body)


# -- lag ---------------------------------------------------------------------------------------


def test_lag_in_entries_and_in_time(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, LAG_ONLY, Routing(), clock=clock)
            status = LogStatus(LOG)
            seen(status, 500, 500, T0)
            seen(status, 500, 600, clock.advance(10))  # 100 behind: not more than lag_entries
            await monitor.evaluate([status], [])
            assert await health(store) == []
            seen(status, 500, 650, clock.advance(10))  # 150 behind
            await monitor.evaluate([status], [])
            (f,) = await health(store)
            assert (f.finding.type, f.finding.log) == (str(HealthType.LAG), LOG)
            assert f.finding.severity is Severity.MEDIUM
            assert "150 entries behind" in f.finding.detail
            seen(status, 650, 650, clock.advance(10))  # caught up
            await monitor.evaluate([status], [])
            (done,) = await health(store)
            assert_resolved_by_monitor(done)

            caught_up = clock()
            for n in range(1, 6):  # a few entries behind, never caught up, for 5m
                seen(status, 650 + 40 * n, 650 + 40 * n + 30, caught_up + 59.9 * n)
                clock.t = caught_up + 59.9 * n
                await monitor.evaluate([status], [])
            assert len(await health(store)) == 1  # 299.5s: not yet
            seen(status, 900, 930, clock.advance(0.5))
            await monitor.evaluate([status], [])
            first, second = await health(store)
            assert first.finding.state is FindingState.RESOLVED
            assert second.finding.type == str(HealthType.LAG)
            assert second.finding.state is FindingState.OPEN
            assert "behind for 300s" in second.finding.detail
            seen(status, 930, 930, clock.advance(5))
            await monitor.evaluate([status], [])
            assert [x.finding.state for x in await health(store)] == [FindingState.RESOLVED] * 2
        finally:
            await store.close()

    run(body)


def test_lag_that_returns_is_a_new_episode(db_url: str) -> None:
    """Lag that clears without the monitor catching up, then returns: the second episode
    starts from the same caught-up time as the first, yet it is a new, open finding."""

    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, LAG_ONLY, Routing(), clock=clock)
            status = LogStatus(LOG)
            seen(status, 500, 500, T0)
            seen(status, 500, 700, clock.advance(10))
            await monitor.evaluate([status], [])
            seen(status, 650, 700, clock.advance(10))  # 50 behind, for 20s: cleared
            await monitor.evaluate([status], [])
            (f,) = await health(store)
            assert_resolved_by_monitor(f)
            seen(status, 650, 900, clock.advance(10))  # 250 behind again
            await monitor.evaluate([status], [])
            first, second = await health(store)
            assert first.finding.state is FindingState.RESOLVED
            assert second.finding.state is FindingState.OPEN
            assert monitor.open_conditions() == {(HealthType.LAG, LOG)}
            seen(status, 900, 900, clock.advance(10))
            await monitor.evaluate([status], [])
            assert [x.finding.state for x in await health(store)] == [FindingState.RESOLVED] * 2
        finally:
            await store.close()

    run(body)


# -- sink_failing ------------------------------------------------------------------------------


async def stored_alert(store: Store, key: str, at: float, *sinks: str) -> None:
    """A rule finding of LOG with outbox rows for ``sinks``, written at ``at``."""
    await store.register_log(LOG, "v1", "http://127.0.0.1:9")
    finding = Finding(
        kind=FindingKind.WATCHED_USE, severity=Severity.HIGH, dedup_key=key, rule="r", log=LOG
    )
    when = datetime.fromtimestamp(at, UTC)
    await store.store_findings([finding], outbox=[OutboxSpec(key, sinks)], at=when)


def test_sink_failing_names_the_sink_and_goes_elsewhere(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            routing = Routing.build([sink("soc"), sink("ops")], {})
            monitor = HealthMonitor(store, HEALTH, routing, clock=clock)
            await stored_alert(store, "alert-1", T0, "soc")
            clock.advance(59)
            await monitor.evaluate([], ["soc", "ops"])
            assert await health(store) == []

            clock.advance(1)
            await monitor.evaluate([], ["soc", "ops"])
            (f,) = await health(store)
            assert f.finding.type == str(HealthType.SINK_FAILING)
            assert ("sink", "soc") in f.finding.matched
            assert f.finding.log is None
            assert f.finding.severity is Severity.HIGH
            assert "soc" in f.finding.detail
            assert await sinks_of(store, f) == ["ops"]  # never to the failing sink itself
            assert monitor.open_conditions() == {(HealthType.SINK_FAILING, "soc")}
            clock.advance(60)
            await monitor.evaluate([], ["soc", "ops"])
            assert len(await health(store)) == 1

            (row,) = await reads.outbox_for(store, "alert-1")
            await store.mark_delivered(row.id, at=datetime.fromtimestamp(clock(), UTC), duration=1)
            await monitor.evaluate([], ["soc", "ops"])
            (done,) = await health(store)
            assert_resolved_by_monitor(done)
            assert monitor.open_conditions() == set()
        finally:
            await store.close()

    run(body)


def test_a_dead_letter_is_not_a_waiting_alert(db_url: str) -> None:
    async def body() -> None:
        clock = Clock(T0 + 600)
        store = await open_store(db_url)
        try:
            monitor = HealthMonitor(store, HEALTH, Routing.build([sink("soc")], {}), clock=clock)
            await stored_alert(store, "alert-1", T0, "soc")
            (row,) = await reads.outbox_for(store, "alert-1")
            at = datetime.fromtimestamp(T0 + 1, UTC)
            await store.record_attempt(row.id, at=at, error="410", duration=1, retry_at=None)
            await monitor.evaluate([], ["soc"])
            assert await health(store) == []
        finally:
            await store.close()

    run(body)


# -- restart -----------------------------------------------------------------------------------


def test_a_restart_continues_open_episodes(db_url: str) -> None:
    """The restarted monitor's tailers start with blank statuses: until they learn otherwise,
    the episodes read back stay open, with no duplicate, and close when the condition does."""

    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            before = HealthMonitor(store, HEALTH, Routing(), clock=clock)
            down, behind = LogStatus(LOG), LogStatus("v2-sim")
            down.record_error(OSError("connection refused"), T0)
            seen(behind, 500, 500, T0)
            seen(behind, 500, 800, T0 + 10)
            clock.advance(60)
            await before.evaluate([down, behind], [])
            opened = {(f.finding.type, f.finding.log): f.finding.id for f in await health(store)}
            assert set(opened) == {("log_unreachable", LOG), ("lag", "v2-sim")}

            after = HealthMonitor(store, HEALTH, Routing(), clock=clock)  # the restart
            down, behind = LogStatus(LOG), LogStatus("v2-sim")  # nothing seen yet
            await after.evaluate([down, behind], [])
            assert after.open_conditions() == {
                (HealthType.LOG_UNREACHABLE, LOG),
                (HealthType.LAG, "v2-sim"),
            }
            down.record_error(OSError("connection refused"), clock.advance(5))
            for n in range(1, 5):  # still down (and, a while later, down for long enough again)
                seen(behind, 500 + 10 * n, 810 + 10 * n, clock())  # moving, still far behind
                clock.advance(30)
                await after.evaluate([down, behind], [])
                now = {(f.finding.type, f.finding.log): f.finding for f in await health(store)}
                assert {k: f.id for k, f in now.items()} == opened
                assert {f.state for f in now.values()} == {FindingState.OPEN}

            seen(down, 900, 900, clock.advance(1))  # reachable again
            seen(behind, 900, 900, clock())  # caught up
            await after.evaluate([down, behind], [])
            found = await health(store)
            assert {f.finding.id for f in found} == set(opened.values())
            for f in found:
                assert_resolved_by_monitor(f)
        finally:
            await store.close()

    run(body)


# -- routing and metrics -----------------------------------------------------------------------


def test_health_findings_follow_the_sink_filters(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            routing = Routing.build(
                [
                    sink("soc"),  # medium and above
                    sink("pager", min_severity="critical"),
                    sink("lies", kinds=["integrity_failure"]),
                    sink("oncall", kinds=["health"], min_severity="high"),
                    sink("rules", rules=["mallory"]),  # rule filters do not narrow health
                ],
                {},
            )
            monitor = HealthMonitor(store, HEALTH, routing, clock=clock)
            status = LogStatus(LOG)
            status.record_error(OSError("connection refused"), T0)
            seen(lagging := LogStatus("v2-sim"), 500, 500, T0)
            seen(lagging, 500, 800, T0)
            clock.advance(60)
            await monitor.evaluate([status, lagging], [])
            (down,) = await of_type(store, HealthType.LOG_UNREACHABLE)
            assert down.finding.severity is Severity.HIGH
            assert await sinks_of(store, down) == ["oncall", "rules", "soc"]
            (lag,) = await of_type(store, HealthType.LAG)
            assert lag.finding.severity is Severity.MEDIUM
            assert await sinks_of(store, lag) == ["rules", "soc"]  # below oncall's high
        finally:
            await store.close()

    run(body)


def test_open_health_gauge(db_url: str) -> None:
    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            metrics = DaemonMetrics.standalone()
            monitor = HealthMonitor(store, HEALTH, Routing(), metrics, clock=clock)

            def gauge(t: HealthType) -> float | None:
                return metrics.registry.get_sample_value(
                    "tlog_monitor_health_findings_open", {"log": LOG, "type": str(t)}
                )

            status = LogStatus(LOG)
            seen(status, 500, 500, T0)
            status.record_error(OSError("connection refused"), clock.advance(1))
            await monitor.evaluate([status], [])
            assert gauge(HealthType.LOG_UNREACHABLE) == 0.0
            clock.advance(60)
            await monitor.evaluate((s for s in [status]), [])  # any iterable of statuses
            assert gauge(HealthType.LOG_UNREACHABLE) == 1.0
            assert gauge(HealthType.LOG_STALLED) == 0.0
            assert gauge(HealthType.LAG) == 0.0

            seen(status, 500, 500, clock.advance(1))
            await monitor.evaluate([status], [])
            assert gauge(HealthType.LOG_UNREACHABLE) == 0.0
            (f,) = await health(store)
            assert_resolved_by_monitor(f)
        finally:
            await store.close()

    run(body)


def test_an_unreachable_log_is_not_also_reported_stalled(db_url: str) -> None:
    async def body() -> None:
        store = await open_store(db_url)
        try:
            clock = Clock()
            monitor = HealthMonitor(store, HEALTH, Routing(), clock=clock)
            status = LogStatus(LOG)
            seen(status, 10, 10, clock())
            status.record_error(TransientLogError("down"), clock.advance(1))
            clock.advance(3600)
            await monitor.evaluate([status], [])
            assert monitor.open_conditions() == {(HealthType.LOG_UNREACHABLE, LOG)}
            assert [f.finding.type for f in await health(store)] == ["log_unreachable"]
        finally:
            await store.close()

    run(body)


def test_a_sink_that_answered_410_is_failing_at_once(db_url: str) -> None:
    async def body() -> None:
        store = await open_store(db_url)
        try:
            clock = Clock()
            routing = Routing.build([sink("soc"), sink("ops")], {})
            monitor = HealthMonitor(store, HEALTH, routing, clock=clock)
            await monitor.evaluate([], ["soc", "ops"], {"soc": "soc.example answered 410 Gone"})
            (f,) = await of_type(store, HealthType.SINK_FAILING)
            assert ("sink", "soc") in f.finding.matched
            assert "410 Gone" in f.finding.detail
            assert await sinks_of(store, f) == ["ops"]  # not the sink that is gone
            await monitor.evaluate([], ["soc", "ops"], {})  # fixed and restarted
            (f,) = await of_type(store, HealthType.SINK_FAILING)
            assert_resolved_by_monitor(f)
        finally:
            await store.close()

    run(body)


# -- resolves reach the sinks ------------------------------------------------------------------


async def events_of(store: Store, f: StoredFinding) -> list[tuple[str, str]]:
    """(sink, trigger or resolve) of every outbox row of ``f``, sorted."""
    return sorted((o.sink, o.event) for o in await reads.outbox_for(store, f.finding.dedup_key))


def test_a_cleared_finding_queues_a_resolve_for_each_sink_that_had_its_trigger(
    db_url: str,
) -> None:
    """A resolve goes where the trigger went: to every sink that took it, to none that its
    filters kept it from, and never to the sink whose failure it was."""

    async def body() -> None:
        clock = Clock()
        store = await open_store(db_url)
        try:
            routing = Routing.build(
                [
                    sink("soc"),  # medium and above
                    sink("oncall", kinds=["health"], min_severity="high"),
                    sink("pager", min_severity="critical"),  # above any health finding
                    sink("lies", kinds=["integrity_failure"]),
                ],
                {},
            )
            names = ["soc", "oncall", "pager", "lies"]
            monitor = HealthMonitor(store, HEALTH, routing, clock=clock)
            status = LogStatus(LOG)
            status.record_error(OSError("connection refused"), T0)
            await stored_alert(store, "alert-1", T0, "soc")  # waits, undelivered, for soc
            clock.advance(60)
            await monitor.evaluate([status], names)
            (down,) = await of_type(store, HealthType.LOG_UNREACHABLE)
            (failing,) = await of_type(store, HealthType.SINK_FAILING)
            assert await events_of(store, down) == [("oncall", "trigger"), ("soc", "trigger")]
            assert await events_of(store, failing) == [("oncall", "trigger")]

            seen(status, 500, 500, clock.advance(1))  # reachable again
            (row,) = await reads.outbox_for(store, "alert-1")  # and soc took its alert
            await store.mark_delivered(row.id, at=datetime.fromtimestamp(clock(), UTC), duration=1)
            await monitor.evaluate([status], names)
            await monitor.evaluate([status], names)  # resolved once: one resolve per sink
            for f, sinks in ((down, ["oncall", "soc"]), (failing, ["oncall"])):
                (done,) = [x for x in await health(store) if x.finding.id == f.finding.id]
                assert_resolved_by_monitor(done)
                expected = [(s, e) for s in sinks for e in ("resolve", "trigger")]
                assert await events_of(store, f) == expected
                for o in await reads.outbox_for(store, f.finding.dedup_key):
                    if o.event == "resolve":
                        assert o.payload["dedup_key"] == f.finding.dedup_key
                        assert o.payload["state"] == str(FindingState.RESOLVED)
                        assert o.delivered_at is None  # for the sink workers to send
            assert await store.pending_outbox("pager", limit=10) == []
            assert await store.pending_outbox("lies", limit=10) == []
        finally:
            await store.close()

    run(body)


# -- end to end: the daemon, the simulator and real receivers ----------------------------------


def quick_retries(p: HttpPolicy) -> HttpPolicy:
    return replace(p, max_attempts=2, backoff_base_seconds=0.02, backoff_cap_seconds=0.1)


@asynccontextmanager
async def running(
    tmp_path: Path,
    url: str,
    h: Harness,
    sinks: list[dict[str, Any]],
    rules: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Monitor]:
    """The daemon, storing in ``url``, tailing the simulator's v1 log (caught up), alerting
    ``sinks``. Health is evaluated only when the test calls ``evaluate_health`` (the scheduled
    job is an hour off)."""
    cfg = write_config(
        tmp_path / "monitor.yaml",
        h.sim,
        tmp_path,
        url,
        v2={"off": True},
        rules=rules or [],
        sinks=sinks,
        health=UNREACHABLE_ONLY_DOC,
    )
    async with Monitor.open(
        str(cfg), health_interval=3600, retry_base=0.02, tune_http=quick_retries
    ) as m:
        stop = asyncio.Event()
        task = asyncio.create_task(m.run(stop))
        try:
            await until(lambda: m.runners["v1"].status.cursor is not None, m)
            yield m
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


def received(rx: Receiver, path: str) -> list[tuple[str, str]]:
    """(dedup key, trigger or resolve) of each event ``rx`` got at ``path``, in order: a
    PagerDuty ``event_action``; an Alertmanager alert is a resolve once its ``endsAt`` passed."""
    out = []
    for r in rx.at(path):
        assert r.processed, r.status
        if path == PAGERDUTY:
            out.append((r.json["dedup_key"], r.json["event_action"]))
        else:
            for a in r.json:
                ended = alert_state(a, r.at) == "resolved"
                out.append((a["labels"]["dedup_key"], "resolve" if ended else "trigger"))
    return out


@pytest.mark.parametrize("kind", ["pagerduty", "alertmanager"])
def test_an_outage_is_triggered_then_resolved_at_the_receiver(
    tmp_path: Path, db_url: str, kind: str
) -> None:
    """The log goes down for a minute (of the health monitor's clock): the receiver is sent a
    trigger; the log comes back: the same receiver is sent the resolve of the same key."""

    async def body() -> None:
        path = PAGERDUTY if kind == "pagerduty" else ALERTMANAGER
        async with harness(tmp_path, entries=40, shards=1) as h, Receiver() as rx:
            target: dict[str, Any] = {"name": "oncall", "type": kind, "url": rx.url(path)}
            if kind == "pagerduty":
                target["routing_key"] = "r" * 32
            async with running(tmp_path, db_url, h, [target]) as m:
                status = m.runners["v1"].status
                # the tailer dates the outage by the wall clock; a fake clock that starts
                # there lets a minute of it pass at once
                clock = Clock(time.time())
                m.health.clock = clock
                await m.evaluate_health()
                assert await health(m.store) == []

                await h.admin("faults", {"rate_5xx": 1.0})
                await until(lambda: status.failing_since is not None, m)
                assert status.failing_since is not None
                clock.t = status.failing_since + 60
                await m.evaluate_health()
                (f,) = await health(m.store)
                assert (f.finding.type, f.finding.log) == (str(HealthType.LOG_UNREACHABLE), "v1")
                assert f.finding.state is FindingState.OPEN
                key = f.finding.dedup_key
                await rx.wait_for(lambda: len(received(rx, path)) >= 1)
                assert received(rx, path) == [(key, "trigger")]

                await h.admin("faults", {"rate_5xx": 0.0})
                await until(lambda: status.failing_since is None, m)
                clock.advance(5)
                await m.evaluate_health()
                (done,) = await health(m.store)
                assert done.finding.id == f.finding.id
                assert_resolved_by_monitor(done)
                await rx.wait_for(lambda: len(received(rx, path)) >= 2)
                assert received(rx, path) == [(key, "trigger"), (key, "resolve")]
                sent = [(o.sink, o.event) for o in await reads.outbox_for(m.store, key)]
                assert sent == [("oncall", "trigger"), ("oncall", "resolve")]

    run(body)


def test_a_sink_answering_410_is_disabled_and_reported_elsewhere(
    tmp_path: Path, db_url: str
) -> None:
    """A planted entry's alert is answered 410 Gone: the sink's worker stops, the alert is kept
    undelivered, and the daemon's health evaluation reports the sink to another sink."""

    async def body() -> None:
        async with harness(tmp_path, entries=40, shards=1) as h, Receiver(secret=SECRET) as rx:
            rx.script(HOOK, [], then=410)
            sinks: list[dict[str, Any]] = [
                {
                    "name": "gone",
                    "type": "webhook",
                    "url": rx.url(HOOK),
                    "secret": SECRET,
                    "group_window": "0s",
                },
                {
                    "name": "oncall",
                    "type": "pagerduty",
                    "url": rx.url(PAGERDUTY),
                    "routing_key": "r" * 32,
                    "kinds": ["health"],
                },
            ]
            async with running(tmp_path, db_url, h, sinks, RULES) as m:
                status, gone = m.runners["v1"].status, m.workers["gone"]
                await until(lambda: status.cursor == 40, m)
                await m.evaluate_health()
                assert await health(m.store) == []  # nothing refused yet

                await h.admin("plant", {"index": 45, "identity": MALLORY})
                await h.admin("append", {"v1": 10})
                await until(lambda: status.cursor == 50, m)
                page = await m.store.findings(FindingQuery(kinds=(FindingKind.WATCHED_USE,)))
                (alert,) = page.items
                assert alert.finding.rule == "mallory"
                await until(lambda: gone.disabled is not None, m)
                assert gone.disabled is not None
                assert "410 Gone" in gone.disabled
                (refused,) = rx.at(HOOK)
                assert refused.status == 410
                assert finding_keys([refused]) == [alert.finding.dedup_key]
                (row,) = await reads.outbox_for(m.store, alert.finding.dedup_key)
                assert (row.delivered_at, row.dead_at) == (None, None)  # kept for a fixed sink

                await m.evaluate_health()
                (f,) = await health(m.store)
                assert f.finding.type == str(HealthType.SINK_FAILING)
                assert ("sink", "gone") in f.finding.matched
                assert "410 Gone" in f.finding.detail
                assert await sinks_of(m.store, f) == ["oncall"]
                await rx.wait_for(lambda: len(rx.at(PAGERDUTY)) >= 1)
                assert received(rx, PAGERDUTY) == [(f.finding.dedup_key, "trigger")]
                assert len(rx.at(HOOK)) == 1  # a disabled sink is not tried again

    run(body)


def test_a_stop_lets_the_delivery_under_way_finish(tmp_path: Path, db_url: str) -> None:
    """A stop while the receiver is still answering waits for the answer: the alert is
    recorded as delivered, not sent again at the next start."""

    async def body() -> None:
        async with harness(tmp_path, entries=40, shards=1) as h, Receiver(secret=SECRET) as rx:
            rx.script(HOOK, [Reply(200, delay=1.0)])
            sinks: list[dict[str, Any]] = [
                {
                    "name": "soc",
                    "type": "webhook",
                    "url": rx.url(HOOK),
                    "secret": SECRET,
                    "group_window": "0s",
                }
            ]
            async with running(tmp_path, db_url, h, sinks, RULES) as m:
                status = m.runners["v1"].status
                await until(lambda: status.cursor == 40, m)
                await h.admin("plant", {"index": 45, "identity": MALLORY})
                await h.admin("append", {"v1": 10})
                await until(lambda: status.cursor == 50, m)
                await rx.wait_for(lambda: len(rx.at(HOOK)) == 1)  # answered a second later
                store = m.store
                (alert,) = (
                    await store.findings(FindingQuery(kinds=(FindingKind.WATCHED_USE,)))
                ).items
            # stopped (running() waits for the daemon's end) while the answer was on its way
            store2 = await Store.open(db_url, migrate=False)
            try:
                (row,) = await reads.outbox_for(store2, alert.finding.dedup_key)
                assert row.delivered_at is not None
            finally:
                await store2.close()
            assert len(rx.at(HOOK)) == 1

    run(body)
