"""Prometheus metrics, created on a registry the caller owns (no module-level globals, so
tests and several monitors in one process never share counters).

Only bounded label values: log names, statuses, reasons. Never identities or digests.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "tlog_monitor"


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
            "Requests that failed after their retries, by reason.",
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
    """What the daemon counts per log: progress, findings, lies, malformed entries, errors.

    Gauges hold the latest known value (sizes, lag, timestamps); counters only grow. Lag in
    entries is the log's latest checkpoint size minus the verified cursor, so a dashboard can
    tell "behind" from "stuck" (``last_progress_timestamp_seconds``).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.entries = Counter(
            f"{PREFIX}_entries_processed",
            "Entries proven in the signed tree, parsed, matched and stored.",
            ["log"],
            registry=registry,
        )
        self.findings = Counter(
            f"{PREFIX}_findings",
            "Findings newly stored, by kind.",
            ["log", "kind"],
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
        self.log_size = Gauge(
            f"{PREFIX}_log_size",
            "Size of the log's latest verified checkpoint (global index for Rekor v1).",
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
            "Entries between the cursor and the log's latest verified checkpoint.",
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

    @classmethod
    def standalone(cls) -> DaemonMetrics:
        return cls(CollectorRegistry())


class AlertMetrics:
    """What alert delivery counts per sink: messages and findings delivered, failed attempts,
    dead letters, the backlog, and whether the sink is disabled (410 Gone)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            f"{PREFIX}_alert_messages",
            "Alert messages a sink accepted, by event (trigger, resolve, test, reminder).",
            ["sink", "event"],
            registry=registry,
        )
        self.delivered = Counter(
            f"{PREFIX}_alerts_delivered",
            "Outbox rows delivered (a grouped message delivers several).",
            ["sink"],
            registry=registry,
        )
        self.failures = Counter(
            f"{PREFIX}_alert_failures",
            "Failed delivery attempts, by reason (status code or error class).",
            ["sink", "reason"],
            registry=registry,
        )
        self.dead = Counter(
            f"{PREFIX}_alerts_dead_lettered",
            "Outbox rows given up on (too old or too many attempts, or refused for good).",
            ["sink"],
            registry=registry,
        )
        self.backlog = Gauge(
            f"{PREFIX}_alert_backlog",
            "Outbox rows waiting for delivery (at the last look, up to 1000).",
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
