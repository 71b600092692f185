"""What the API reads: the store, the server settings, the metrics registry and, from the
running daemon, each log's live status."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from monitor.config.models import ServerSettings
from monitor.core.status import LogStatus
from monitor.storage.ports import ApiStore


@dataclass(frozen=True)
class ApiContext:
    store: ApiStore
    server: ServerSettings
    registry: CollectorRegistry
    # the daemon's logs by name (read at each request: shards come and go)
    statuses: Callable[[], Mapping[str, LogStatus]] = field(default=dict)
    # a log counts as verified recently when its last clean pass ended within this many
    # seconds (the health settings' unreachable_after)
    ready_within: float = 900.0
    clock: Callable[[], float] = time.time
    # the configured watch rules: a rule with no finding yet is not an unknown one
    rules: frozenset[str] = frozenset()

    def configured_logs(self) -> frozenset[str]:
        """The logs the daemon tails now (a new one may have nothing stored yet)."""
        return frozenset(self.statuses())
