"""The live status of each tailed log: what its passes saw, and when.

The daemon's tailers write it; the health checks, the metrics and the API read it. It lives
at the bottom so that none of its readers has to import the daemon.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from monitor.core.findings import IntegrityType
from monitor.core.reasons import classify

__all__ = ["LogStatus", "PassOutcome"]


class Lie(Protocol):
    """How a pass ended when the log lied (an integrity failure)."""

    @property
    def type(self) -> IntegrityType: ...

    @property
    def message(self) -> str: ...


class PassOutcome(Protocol):
    """What a status needs of a finished pass (the daemon's ``PassResult``)."""

    @property
    def cursor(self) -> int: ...

    @property
    def log_size(self) -> int: ...

    @property
    def failure(self) -> Lie | None: ...


@dataclass
class LogStatus:
    """What one log's tailer has seen, written by the tailer, read by health and metrics.
    Times are wall-clock seconds."""

    name: str
    frozen: bool = False  # a retired shard: its checkpoint is not expected to change
    failing_since: float | None = None  # since when every pass ended in an error or a lie
    last_error: str | None = None  # the full text: logs and the read-token API only
    last_reason: str | None = None  # classified (``monitor.core.reasons``): public surfaces
    cursor: int | None = None
    log_size: int | None = None
    size_changed_at: float | None = None
    progress_at: float | None = None
    caught_up_at: float | None = None
    lie: str | None = None  # the integrity type that stopped the last pass
    last_success_at: float | None = None  # the end of the last pass without error or lie
    # integrity findings of this log may be open (unknown at start: checked once)
    integrity_open: bool = True
    started_at: float = field(default_factory=time.time)  # when tailing this log began

    def record_pass(self, result: PassOutcome, now: float) -> None:
        if result.failure is None:
            self.failing_since = None
            self.last_error = self.last_reason = None
            self.last_success_at = now
        else:  # the log lied: the pass ended, and failed
            if self.failing_since is None:
                self.failing_since = now
            self.last_error = result.failure.message
            self.last_reason = str(result.failure.type)
        caught_up = result.cursor >= result.log_size
        if self.log_size != result.log_size:
            self.size_changed_at = now
        # progress: the cursor moved, or nothing was left to read (a quiet log is not stalled)
        if self.cursor != result.cursor or self.progress_at is None or caught_up:
            self.progress_at = now
        self.cursor, self.log_size = result.cursor, result.log_size
        self.lie = None if result.failure is None else str(result.failure.type)
        if caught_up:
            self.caught_up_at = now

    def record_error(self, error: BaseException, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = f"{type(error).__name__}: {error}"
        self.last_reason = classify(error)
        self.lie = None  # the last pass ended in an error, not a lie

    def lag(self) -> int | None:
        if self.cursor is None or self.log_size is None:
            return None
        return max(0, self.log_size - self.cursor)

    def up(self) -> bool:
        """The last pass ended without error or lie (not known before the first one ends)."""
        return self.last_success_at is not None and self.failing_since is None and not self.lie

    def behind_for(self, now: float) -> float:
        """0 when the last pass reached the log's checkpoint; else the seconds since the
        monitor last saw itself caught up (or since it began tailing the log)."""
        if self.up() and self.lag() == 0:
            return 0.0
        since = self.caught_up_at if self.caught_up_at is not None else self.started_at
        return max(0.0, now - since)


@dataclass(frozen=True)
class Leader:
    """Which replica leads a log (tails it and writes its state), and since when."""

    replica: str
    since: datetime

    def to_json(self) -> dict[str, str]:
        return {"replica": self.replica, "since": self.since.isoformat()}
