"""The daemon, assembled from a configuration file: one tailed runner per log tree set (a
Rekor v1 log, or each Rekor v2 shard), the store, the trust root, and the periodic jobs.

``Monitor.open(path)`` loads and checks the configuration (every problem named against the
file), opens the database (migrating it if the settings allow), and builds one ``Runner`` per
log. Then one of:

- ``run(stop)``: the daemon. A supervised ``Tailer`` task per runner; APScheduler drives the
  checkpoint polls, health evaluation, trust-root refresh (which also discovers new v2
  shards and starts tailing them from their first entry) and index_all retention. When
  ``stop`` is set the tailers are cancelled: a batch being stored is finished (it is shielded),
  anything else of the pass is abandoned, and nothing half-done is ever stored.
- ``once()``: one catch-up pass of every runner, for cron and CI.
- ``backfill(name, first, end)``: one verified range, resumed from its stored progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry

from monitor.alerts.deliver import SinkWorker
from monitor.alerts.routing import Routing
from monitor.api import ApiServer
from monitor.config import advice
from monitor.config.models import LogSettings
from monitor.config.trustcheck import CheckedConfig, load_checked, load_trust
from monitor.core.aio import cancel_and_wait
from monitor.core.errors import ConfigError, LeaseLostError, MonitorError, StorageError
from monitor.core.metrics import (
    AlertMetrics,
    ClientMetrics,
    DaemonMetrics,
    LogStatusCollector,
    StorageMetrics,
    register_runtime,
)
from monitor.daemon.catchup import catch_up
from monitor.daemon.context import PassContext, PassResult, Start
from monitor.daemon.health import HealthMonitor
from monitor.daemon.imagewatch import ImageCollector, image_watch_of
from monitor.daemon.integrity import after_pass
from monitor.daemon.jobs import Jobs, apply_retention
from monitor.daemon.leadership import idle_timeout, leadership_for
from monitor.daemon.parsepool import ParsePool, worker_count
from monitor.daemon.runners import PassProgress, Runner, build_runner, link_to_entry, runner_name
from monitor.daemon.serving import api_server
from monitor.daemon.tailer import Backoff
from monitor.daemon.tailing import Tailers
from monitor.daemon.vantage import VantageCollector
from monitor.daemon.witnessing import WitnessCollector
from monitor.logclient.discovery import ShardDiscovery
from monitor.logclient.http import HttpPolicy
from monitor.logclient.policy import policy_for
from monitor.rules.engine import RuleEngine
from monitor.storage.lock import Holder
from monitor.storage.store import Store
from monitor.trust import TransparencyLog

__all__ = ["Monitor"]

log = logging.getLogger("monitor.daemon")

RETENTION_EVERY = 3600.0
# seconds a stop waits for the deliveries under way: one cut short is sent again at the next
# start (the receiver drops the repeat by its key), one that finishes is recorded once
DELIVERY_GRACE = 5.0
LONG_PASS = 10_000  # entries: a pass this long reports its progress


class Monitor:
    def __init__(
        self,
        checked: CheckedConfig,
        store: Store,
        session: aiohttp.ClientSession,
        registry: CollectorRegistry,
        *,
        health_interval: float = 15.0,
        retry_base: float = 1.0,
        tune_http: Callable[[HttpPolicy], HttpPolicy] | None = None,
    ) -> None:
        self.settings = checked.settings
        self.trust = checked.trust
        self.store = store
        self.session = session
        self.registry = registry
        register_runtime(registry)
        self.client_metrics = ClientMetrics(registry)
        self.metrics = DaemonMetrics(registry)
        # read at every scrape: runners added later (new shards) are in it; a log's gauges
        # come from the replica that leads it
        registry.register(LogStatusCollector(lambda: [r.status for r in self._led()]))
        registry.register(
            WitnessCollector(lambda: [r.witnesses for r in self._led() if r.witnesses])
        )
        registry.register(VantageCollector(lambda: [r.vantage for r in self._led() if r.vantage]))
        registry.register(ImageCollector(lambda: self.images))
        store.timing = StorageMetrics(registry).observe
        self.engine = RuleEngine.compile(self.settings.rules)
        self.parser = ParsePool(
            worker_count(self.settings.processing.parse_workers), self.settings.rules
        )
        self.routing = Routing.from_settings(self.settings)
        self.health = HealthMonitor(store, self.settings.health, self.routing, self.metrics)
        self.alert_metrics = AlertMetrics(registry)
        self.workers = {
            sink.name: SinkWorker(
                sink,
                store,
                session,
                self.settings.alerts,
                metrics=self.alert_metrics,
                entry_url=self.entry_url,
            )
            for sink in self.settings.alerts.sinks
        }
        # a commit that queued alerts wakes the workers: they send at once, not at their poll
        store.queued = self.wake_workers
        self._worker_tasks: list[asyncio.Task[None]] = []
        self.health_interval = health_interval
        self.retry_base = retry_base  # seconds before the first retry of a failed pass
        self.tune_http = tune_http  # tests shorten the HTTP retry backoff with it
        self.runners: dict[str, Runner] = {}
        self._discovery: dict[str, ShardDiscovery] = {}
        self._stop: asyncio.Event | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._jobs = Jobs()
        self.api: ApiServer | None = None  # serving while ``run`` runs
        self.config_path: str | None = None  # named in errors about the configuration
        for resolved in checked.logs:
            cfg = resolved.config
            if cfg.discover:
                self._discovery[cfg.name] = ShardDiscovery(lambda: self.trust)
                resolved_logs = self._discovery[cfg.name].refresh().current
            else:
                resolved_logs = resolved.logs
            for tlog in resolved_logs:
                self._add(cfg, tlog, cfg.start)
        self.tailers = Tailers(
            self.runners,
            self.catch_up,
            metrics=self.metrics,
            retry_base=retry_base,
            on_gain=self.health.reload,
        )
        self.lead = leadership_for(
            self.settings.ha,
            store,
            lambda: list(self.runners),
            gained=self.tailers.gained,
            lost=self.tailers.lost,
            metrics=self.metrics,
        )
        self._lead_task: asyncio.Task[None] | None = None
        self.images = image_watch_of(self)

    def _led(self) -> list[Runner]:
        return [r for r in self.runners.values() if self.lead.leads(r.name)]

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: str,
        *,
        registry: CollectorRegistry | None = None,
        health_interval: float = 15.0,
        retry_base: float = 1.0,
        tune_http: Callable[[HttpPolicy], HttpPolicy] | None = None,
    ) -> AsyncIterator[Monitor]:
        checked = await asyncio.to_thread(load_checked, path, load_trust)
        db, ha = checked.settings.database, checked.settings.ha
        url = db.sqlalchemy_url().render_as_string(hide_password=False)
        # one monitor per database: a second one (or ``once`` beside a daemon) is refused,
        # unless each is a replica (ha:), and then a monitor without ha: is refused
        store = await Store.open(
            url,
            migrate=db.migrate_on_start,
            pool_size=db.pool_size,
            exclusive=ha is None,
            replicated=ha is not None,
            holder=Holder.this_process(None if ha is None else ha.replica_id),
            idle_in_transaction_timeout=idle_timeout(ha),
        )
        session = aiohttp.ClientSession()
        try:
            monitor = cls(
                checked,
                store,
                session,
                registry or CollectorRegistry(),
                health_interval=health_interval,
                retry_base=retry_base,
                tune_http=tune_http,
            )
            monitor.config_path = path
            try:
                yield monitor
            finally:
                await monitor.parser.close()
        finally:
            await session.close()
            await store.close()

    def wake_workers(self) -> None:
        for worker in self.workers.values():
            worker.wake()

    # -- runners -----------------------------------------------------------------------------

    def _add(self, cfg: LogSettings, tlog: TransparencyLog, start: Start) -> Runner:
        policy = policy_for(cfg)
        if self.tune_http is not None:
            policy = self.tune_http(policy)
        runner = build_runner(
            cfg,
            tlog,
            start,
            session=self.session,
            metrics=self.client_metrics,
            policy=policy,
            routing=self.routing,
        )
        self.runners[runner.name] = runner
        return runner

    def runner(self, name: str) -> Runner:
        found = self.runners.get(name)
        if found is None:
            known = ", ".join(sorted(self.runners)) or "none"
            raise ConfigError(f"no log named {name!r} in the configuration; known: {known}")
        return found

    def context(
        self,
        runner: Runner,
        backfill: tuple[int, int] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> PassContext:
        return PassContext(
            runner.name,
            self.store,
            self.engine,
            self.trust.certificate_authorities,
            routing=self.routing,
            index_all=runner.config.index_all,
            backfill=backfill,
            metrics=self.metrics,
            progress=progress,
            parser=self.parser,
        )

    async def catch_up(
        self,
        runner: Runner,
        *,
        backfill: tuple[int, int] | None = None,
        show_over: int = LONG_PASS,
    ) -> PassResult:
        """One verified pass of ``runner`` (or of its backfill range). A pass of at least
        ``show_over`` entries reports its progress (a bar on a terminal, else log lines)."""
        label = runner.name if backfill is None else f"{runner.name} backfill"
        # a backfill moves its own row, never the log's: it needs no lease
        lease = self.lead.lease(runner.name) if backfill is None else None
        shown = PassProgress(label, show_over)
        ctx = self.context(runner, backfill, shown.advance)
        witnesses, view = (runner.witnesses, runner.vantage) if backfill is None else (None, None)
        hold = None if view is None else await view.held(self.store)
        ctx = dataclasses.replace(
            ctx, planned=shown.planned, lease=lease, witnesses=witnesses, hold=hold
        )
        chunk = runner.config.chunk_size()
        try:
            result = await catch_up(runner.source, ctx, start=runner.start, chunk=chunk)
        except LeaseLostError:
            self.lead.fenced(runner.name, None if lease is None else lease.epoch)
            raise
        except StorageError:
            self.lead.check()
            raise
        finally:
            shown.close()
        if backfill is None:
            await after_pass(self.store, runner, result)
        return result

    # -- once and backfill -------------------------------------------------------------------

    async def once(
        self, *, show_over: int = LONG_PASS
    ) -> dict[str, PassResult | MonitorError | Exception]:
        """One pass of every runner, concurrently; each one's result or error (a log that
        another replica leads is left to it: ``LeaseLostError``)."""
        names = list(self.runners)
        async with self.lead.holding():
            results = await asyncio.gather(
                *(self.catch_up(self.runners[n], show_over=show_over) for n in names),
                return_exceptions=True,
            )
        out: dict[str, PassResult | MonitorError | Exception] = {}
        now = time.time()
        for name, r in zip(names, results, strict=True):
            status = self.runners[name].status
            if isinstance(r, PassResult):
                status.record_pass(r, now)  # as the tailer does: metrics and /readyz read it
            elif isinstance(r, Exception):
                status.record_error(r, now)
            else:
                raise r  # CancelledError, KeyboardInterrupt: not a log's failure
            out[name] = r
        return out

    async def backfill(
        self,
        name: str,
        first: int,
        end: int,
        *,
        show_over: int = LONG_PASS,
        attempts: int = 8,
    ) -> PassResult:
        """The verified range [first, end) of ``name``, resumed from its stored progress.
        Errors of the log are retried with backoff (``attempts`` in a row); a lie ends it."""
        if not 0 <= first <= end:
            raise ConfigError(f"backfill range [{first}, {end}) is empty or negative")
        runner = self.runner(name)
        backoff = Backoff(base=1.0, cap=60.0)
        while True:
            try:
                return await self.catch_up(runner, backfill=(first, end), show_over=show_over)
            except MonitorError as e:
                if backoff.failures + 1 >= attempts:
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "backfill pass failed: %s; retrying in %.1fs",
                    e,
                    delay,
                    extra={"fields": {"log": name}},
                )
                await asyncio.sleep(delay)

    # -- the daemon --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tail every log until ``stop`` is set, serving the API, ``/metrics`` and the health
        endpoints meanwhile."""
        self._stop = stop
        self.tailers.start(stop)
        self.api = api_server(self)
        try:
            await self.api.start()
        except ConfigError as e:
            raise ConfigError(f"{self.config_path or 'configuration'}: {e}") from None
        scheduler = self._scheduler = AsyncIOScheduler(timezone=UTC)
        jobs = self._jobs
        for runner in list(self.runners.values()):
            self._poll(runner, scheduler)
        leading = asyncio.Event()  # set once the tailers are stopped: leases end after them
        self._lead_task = asyncio.create_task(self.lead.run(leading), name="leadership")
        scheduler.add_job(
            jobs.wrap(self.evaluate_health),
            "interval",
            seconds=self.health_interval,
            id="health",
            coalesce=True,
            max_instances=1,
        )
        scheduler.add_job(
            jobs.wrap(self.refresh_trust),
            "interval",
            seconds=self.settings.trust.refresh_interval.total_seconds(),
            id="trust-refresh",
            coalesce=True,
            max_instances=1,
        )
        if self.images is not None:
            self.images.schedule(scheduler, jobs.wrap)
        if any(r.config.retention is not None for r in self.runners.values()):
            scheduler.add_job(
                jobs.wrap(self.apply_retention),
                "interval",
                seconds=RETENTION_EVERY,
                id="retention",
                coalesce=True,
                max_instances=1,
                next_run_time=datetime.now(UTC),
            )
        scheduler.start()
        self._worker_tasks = [
            asyncio.create_task(w.run(stop), name=f"deliver {name}")
            for name, w in self.workers.items()
        ]
        log.info(
            "monitor started",
            extra={"fields": {"logs": sorted(self.runners), "database": self.store.dialect}},
        )
        for warning in advice.warnings(self.settings):
            log.warning(warning)
        try:
            await stop.wait()
        finally:
            await jobs.stop(scheduler)
            self._scheduler = None
            await self.tailers.stop_all()
            leading.set()
            await self._lead_task
            await self._stop_workers()
            await self.api.stop()
            log.info("monitor stopped")

    def _poll(self, runner: Runner, scheduler: AsyncIOScheduler) -> None:
        """Wake the runner's tailer at every poll interval (while this process leads it)."""

        scheduler.add_job(
            self._jobs.wrap(lambda: self.tailers.wake(runner)),
            "interval",
            seconds=runner.config.poll_interval.total_seconds(),
            id=f"poll {runner.name}",
            coalesce=True,
            max_instances=1,
        )

    async def _stop_workers(self) -> None:
        """Each delivery worker ends after the delivery under way (``stop`` is set), or is
        cancelled after ``DELIVERY_GRACE`` seconds."""
        if self._worker_tasks:
            await asyncio.wait(self._worker_tasks, timeout=DELIVERY_GRACE)
        await cancel_and_wait(self._worker_tasks)

    def entry_url(self, log_name: str, index: int) -> str | None:
        return link_to_entry(self.runners.get(log_name), index)

    async def deliver_pending(self, seconds: float = 30.0) -> dict[str, int]:
        """Deliver what waits in the outbox now (``once``); rows still pending per sink."""
        deadline = time.monotonic() + seconds
        left = await asyncio.gather(*(w.drain(deadline) for w in self.workers.values()))
        return dict(zip(self.workers, left, strict=True))

    async def evaluate_health(self) -> None:
        led = self._led()
        statuses = [r.status for r in led]
        elsewhere = set(self.runners) - {r.name for r in led}
        sinks = [s.name for s in self.settings.alerts.sinks]
        try:
            disabled = {n: w.disabled for n, w in self.workers.items() if w.disabled}
            await self.health.evaluate(statuses, sinks, disabled, elsewhere)
        except MonitorError as e:
            log.warning("health evaluation failed: %s", e)

    async def refresh_trust(self) -> list[str]:
        """Reload the trust root (files, or TUF when configured) and start tailing any new
        v2 shard from its first entry (when running); the names of the runners added."""
        scheduler = self._scheduler
        try:
            self.trust = await asyncio.to_thread(load_trust, self.settings)
        except MonitorError as e:
            log.error("trust root refresh failed, keeping the current one: %s", e)
            return []
        if self.images is not None:
            self.images.reset()
        added = []
        for cfg in self.settings.logs:
            discovery = self._discovery.get(cfg.name)
            if discovery is None:
                continue
            changes = discovery.refresh()
            for tlog in changes.untrusted:
                log.warning(
                    "shard not read: %s",
                    tlog.validity_problem(),
                    extra={"fields": {"log": runner_name(cfg, tlog)}},
                )
            for tlog in changes.added:
                if runner_name(cfg, tlog) in self.runners:
                    continue
                runner = self._add(cfg, tlog, 0)  # a new shard is read from its start
                added.append(runner.name)
                log.info("new shard", extra={"fields": {"log": runner.name}})
                if scheduler is not None and self._stop is not None:
                    self._poll(runner, scheduler)
                    self.lead.added()
            for tlog in changes.retired:
                retired = self.runners.get(runner_name(cfg, tlog))
                if retired is not None:
                    retired.status.frozen = True
        return added

    async def apply_retention(self) -> None:
        await apply_retention(self.store, self._led())
