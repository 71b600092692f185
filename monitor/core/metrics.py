"""Prometheus metrics, created on a registry the caller owns (no module-level globals, so
tests and several monitors in one process never share counters).

Only bounded label values: log names, sink names, rule names (from the configuration),
kinds, statuses, reasons, operation names. Never identities, digests, URLs or indexes.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily

from monitor import __version__
from monitor.core.findings import IntegrityType
from monitor.core.status import LogStatus

__all__ = [
    "AlertMetrics",
    "ClientMetrics",
    "DaemonMetrics",
    "LogStatusCollector",
    "StorageMetrics",
    "register_runtime",
]

PREFIX = "tlog_monitor"
OUTCOMES = ("delivered", "failed", "dead_lettered")  # of outbox rows, per delivery attempt


def register_runtime(registry: CollectorRegistry) -> None:
    """The build (``tlog_monitor_build_info{version,python}``) and prometheus_client's
    process, platform and garbage-collector metrics, on ``registry`` (a registry of its
    own: prometheus_client's global one has the last three already)."""
    build = Info(f"{PREFIX}_build", "The monitor's version and Python's.", registry=registry)
    build.info({"version": __version__, "python": platform.python_version()})
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class ClientMetrics:
    """What the log clients count: every request, retry, failure and rate-limit wait."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            f"{PREFIX}_fetch_requests",
            "HTTP requests to a log, by response status (or error class).",
            ["log", "status"],
            registry=registry,
        )
        self.retries = Counter(
            f"{PREFIX}_fetch_retries",
            "Requests retried, by reason.",
            ["log", "reason"],
            registry=registry,
        )
        self.failures = Counter(
            f"{PREFIX}_fetch_failures",
            "Requests that failed after their retries, or for good, by reason.",
            ["log", "reason"],
            registry=registry,
        )
        self.rate_limit_wait = Counter(
            f"{PREFIX}_rate_limit_wait_seconds",
            "Time spent waiting for the request budget (token bucket and Retry-After).",
            ["log"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_fetch_latency_seconds",
            "Latency of one HTTP request to a log.",
            ["log"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )

    @classmethod
    def standalone(cls) -> ClientMetrics:
        """Metrics on a private registry (CLI tools, tests)."""
        return cls(CollectorRegistry())


class DaemonMetrics:
    """What the daemon counts per log: progress, matches, findings, lies, errors.

    Gauges hold the latest known value; counters only grow. Two sizes tell a lie from lag:
    ``checkpoint_tree_size`` follows every checkpoint whose signature verifies,
    ``verified_tree_size`` only those proven consistent with the tree stored before, so a
    fork or a shrink moves the first and not the second. Lag in entries is the signed size
    minus the cursor; ``last_progress_timestamp_seconds`` tells "behind" from "stuck".
    The gauges follow the log's tailing passes; a backfill only counts.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.entries = Counter(
            f"{PREFIX}_entries_processed",
            "Entries proven in the signed tree, parsed, matched and stored, by entry kind "
            "(unknown for a kind this monitor does not know, malformed when unreadable).",
            ["log", "kind"],
            registry=registry,
        )
        self.matches = Counter(
            f"{PREFIX}_matches",
            "Entries a watch rule matched (expected or not), once stored.",
            ["log", "rule", "severity"],
            registry=registry,
        )
        self.findings = Counter(
            f"{PREFIX}_findings",
            'Findings newly stored, by kind, rule ("" without one) and severity; kind '
            '"mixed" when a batch was partly stored before (rule and severity then "").',
            ["log", "kind", "rule", "severity"],
            registry=registry,
        )
        self.malformed = Counter(
            f"{PREFIX}_malformed_entries",
            "Entries the parser could not read (stored with their raw body).",
            ["log"],
            registry=registry,
        )
        self.integrity_failures = Counter(
            f"{PREFIX}_integrity_failures",
            "Passes stopped by a proven lie of the log, by type.",
            ["log", "type"],
            registry=registry,
        )
        self.pass_errors = Counter(
            f"{PREFIX}_pass_errors",
            "Catch-up passes that failed for a reason other than a lie, by error class.",
            ["log", "error"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_seconds",
            "Time to parse, match and store one batch of proven entries.",
            ["log"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.checkpoint_size = Gauge(
            f"{PREFIX}_checkpoint_tree_size",
            "Size of the log's latest checkpoint read with a valid signature (for Rekor v1, "
            "the global size over its trees).",
            ["log"],
            registry=registry,
        )
        self.verified_size = Gauge(
            f"{PREFIX}_verified_tree_size",
            "Size of the log's latest checkpoint proven consistent with the stored tree.",
            ["log"],
            registry=registry,
        )
        self.cursor = Gauge(
            f"{PREFIX}_cursor",
            "Next index to process: every entry before it is proven and stored.",
            ["log"],
            registry=registry,
        )
        self.lag_entries = Gauge(
            f"{PREFIX}_lag_entries",
            "Entries between the cursor and the log's latest signed checkpoint.",
            ["log"],
            registry=registry,
        )
        self.last_progress = Gauge(
            f"{PREFIX}_last_progress_timestamp_seconds",
            "When the cursor last moved, or the log was last seen fully processed.",
            ["log"],
            registry=registry,
        )
        self.last_checkpoint = Gauge(
            f"{PREFIX}_last_checkpoint_timestamp_seconds",
            "When a verified checkpoint of the log was last read.",
            ["log"],
            registry=registry,
        )
        self.health = Gauge(
            f"{PREFIX}_health_findings_open",
            "Open health findings, by type (1 while the condition lasts).",
            ["log", "type"],
            registry=registry,
        )
        self.leader = Gauge(
            f"{PREFIX}_log_leader",
            "1 while this replica leads the log (tails it and writes its state), else 0. "
            "A monitor without ha: leads every log it tails. No replica at 1 for a log: "
            "nobody watches it.",
            ["log", "replica"],
            registry=registry,
        )
        self.leadership_changes = Counter(
            f"{PREFIX}_leadership_changes",
            "Times this replica began (gained) or stopped (lost) leading the log.",
            ["log", "change"],
            registry=registry,
        )
        self.fenced = Counter(
            f"{PREFIX}_fenced_batches",
            "Batches refused at commit because this replica's lease of the log had run out "
            "or been taken (a replica that was paused): nothing of them was stored.",
            ["log"],
            registry=registry,
        )
        self._signed: dict[str, int] = {}
        self._cursors: dict[str, int] = {}
        self._known: set[str] = set()

    @classmethod
    def standalone(cls) -> DaemonMetrics:
        return cls(CollectorRegistry())

    def known(self, log: str) -> None:
        """Show the log's counters at 0 before anything happens (rates need a start)."""
        if log in self._known:
            return
        self._known.add(log)
        self.malformed.labels(log)
        for t in IntegrityType:
            self.integrity_failures.labels(log, str(t))

    def leads(self, log: str, replica: str, leading: bool, *, changed: bool = False) -> None:
        """Whether this replica leads ``log`` (``changed``: it began or stopped just now); a
        log it stops leading loses its per-log gauges here (the leader reports them: stale
        values of a former leader would mislead)."""
        self.leader.labels(log, replica).set(1 if leading else 0)
        for change in ("lost", "gained"):
            self.leadership_changes.labels(log, change)  # shown at 0 from the start
        if changed:
            self.leadership_changes.labels(log, "gained" if leading else "lost").inc()
        self.fenced.labels(log)
        if leading:
            return
        for gauge in (
            self.checkpoint_size,
            self.verified_size,
            self.cursor,
            self.lag_entries,
            self.last_progress,
            self.last_checkpoint,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(log)
        self._signed.pop(log, None)
        self._cursors.pop(log, None)

    def signed_checkpoint(self, log: str, size: int) -> None:
        """A checkpoint of ``size`` entries whose signature verifies (consistent or not)."""
        self.checkpoint_size.labels(log).set(size)
        self._signed[log] = size
        self._lag(log)

    def verified_checkpoint(self, log: str, size: int, now: float) -> None:
        """A checkpoint proven to extend the stored tree."""
        self.verified_size.labels(log).set(size)
        self.last_checkpoint.labels(log).set(now)

    def moved(self, log: str, cursor: int, now: float | None) -> None:
        """The stored cursor is ``cursor``; ``now`` when it moved by processing entries."""
        self.cursor.labels(log).set(cursor)
        self._cursors[log] = cursor
        if now is not None:
            self.last_progress.labels(log).set(now)
        self._lag(log)

    def caught_up(self, log: str, now: float) -> None:
        """A pass processed everything up to the signed checkpoint."""
        self.last_progress.labels(log).set(now)

    def _lag(self, log: str) -> None:
        size, cursor = self._signed.get(log), self._cursors.get(log)
        if size is not None and cursor is not None:
            self.lag_entries.labels(log).set(max(0, size - cursor))


class LogStatusCollector:
    """Per-log gauges computed at scrape time from the tailers' statuses: lag in seconds
    (it grows between passes, so no pass could keep it current), up, and the last clean
    pass. ``statuses`` is called at every scrape: logs added later (new shards) appear."""

    def __init__(
        self,
        statuses: Callable[[], Iterable[LogStatus]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.statuses = statuses
        self.clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag, up, success = self._families()
        now = self.clock()
        for s in list(self.statuses()):
            lag.add_metric([s.name], s.behind_for(now))
            up.add_metric([s.name], 1.0 if s.up() else 0.0)
            if s.last_success_at is not None:
                success.add_metric([s.name], s.last_success_at)
        return [lag, up, success]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                f"{PREFIX}_lag_seconds",
                "0 when the last pass reached the log's checkpoint; else seconds since the "
                "monitor last saw itself caught up (or since it started).",
                labels=["log"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_log_up",
                "1 when the last pass succeeded; 0 while passes fail, after a lie of the log, "
                "and until the first pass ends.",
                labels=["log"],
            ),
            GaugeMetricFamily(
                f"{PREFIX}_last_success_timestamp_seconds",
                "End of the last pass without error or lie.",
                labels=["log"],
            ),
        )


class StorageMetrics:
    """How long the store's operations take (``Store.timing`` is ``observe``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.seconds = Histogram(
            f"{PREFIX}_db_operation_seconds",
            "Time of one store operation, waiting for the writer's turn included.",
            ["operation"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )

    def observe(self, operation: str, seconds: float) -> None:
        self.seconds.labels(operation).observe(seconds)


class AlertMetrics:
    """What alert delivery counts per sink: messages sent, outbox rows delivered, failed or
    dead-lettered, failed attempts, the outbox waiting, and whether the sink is disabled."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            f"{PREFIX}_alert_messages",
            "Alert messages a sink accepted, by event (trigger, resolve, test, reminder).",
            ["sink", "event"],
            registry=registry,
        )
        self.deliveries = Counter(
            f"{PREFIX}_alert_deliveries",
            "Outbox rows per delivery attempt, by outcome: delivered, failed (to be retried, "
            "or kept for a disabled sink) or dead_lettered (given up on). A grouped message "
            "counts each of its rows.",
            ["sink", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            f"{PREFIX}_alert_failures",
            "Failed delivery attempts, by reason (status code or error class).",
            ["sink", "reason"],
            registry=registry,
        )
        self.depth = Gauge(
            f"{PREFIX}_outbox_depth",
            "Outbox rows waiting for delivery to the sink.",
            ["sink"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            f"{PREFIX}_outbox_oldest_age_seconds",
            "Age of the sink's oldest undelivered outbox row; 0 when none waits.",
            ["sink"],
            registry=registry,
        )
        self.disabled = Gauge(
            f"{PREFIX}_alert_sink_disabled",
            "1 when the sink answered 410 Gone and delivery to it stopped.",
            ["sink"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_alert_delivery_seconds",
            "Time for one delivery request.",
            ["sink"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )

    def known(self, sink: str) -> None:
        """Show the sink's series at 0 before anything is delivered (rates need a start)."""
        for outcome in OUTCOMES:
            self.deliveries.labels(sink, outcome)
        self.disabled.labels(sink).set(0)
        self.depth.labels(sink).set(0)
        self.oldest_age.labels(sink).set(0)


# one series of a SizeAgeCollector: its label values, a size (None: none to show), an age
SizeAge = tuple[Sequence[str], float | None, float]


class SizeAgeCollector:
    """Two gauges read at scrape time, per label values: a size, and an age in seconds that
    grows between events (a witness's latest cosignature, a vantage point's latest
    agreement). A subclass names them and yields its ``points``."""

    LABELS: ClassVar[tuple[str, ...]]
    SIZE: ClassVar[tuple[str, str]]  # (metric name, help)
    AGE: ClassVar[tuple[str, str]]

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def points(self, now: float) -> Iterable[SizeAge]:
        raise NotImplementedError

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size, age = self._families()
        for labels, value, seconds in self.points(self.clock()):
            if value is not None:
                size.add_metric(list(labels), value)
            age.add_metric(list(labels), max(0.0, seconds))
        return [size, age]

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        labels = list(self.LABELS)
        return (
            GaugeMetricFamily(*self.SIZE, labels=labels),
            GaugeMetricFamily(*self.AGE, labels=labels),
        )
