"""How to read one configured log: its ``logs[]`` settings as the client's ``HttpPolicy``."""

from __future__ import annotations

from monitor.config.models import LogSettings
from monitor.logclient.http import HttpPolicy

__all__ = ["policy_for"]


def policy_for(config: LogSettings) -> HttpPolicy:
    """Every option of ``config`` that the client and the passes read, the rest defaults."""
    return HttpPolicy(
        requests_per_second=config.requests_per_second,
        burst=config.burst,
        max_concurrency=config.max_concurrency,
        timeout_seconds=config.timeout.total_seconds(),
        max_entry_bytes=config.max_entry_bytes,
        memory_budget_bytes=config.memory_budget_bytes,
        missing_after_seconds=config.missing_after.total_seconds(),
    )
