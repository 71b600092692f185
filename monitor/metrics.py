"""Prometheus metrics, created on a registry the caller owns (no module-level globals, so
tests and several monitors in one process never share counters).

Only bounded label values: log names, statuses, reasons. Never identities or digests.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
