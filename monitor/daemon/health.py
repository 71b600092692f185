"""The monitor's honesty about itself: ``health`` findings raised while a log is unreachable,
stalled or lagging, or an alert sink is failing, and resolved when the condition clears.

Each tailer keeps a ``LogStatus`` (``monitor.core.status``: what its passes saw, when);
``HealthMonitor.evaluate`` runs periodically, compares every condition with the thresholds of
the ``health`` settings, and stores a finding when a condition starts (one per episode: a new
episode is a new finding, hence a new alert) and resolves it when it ends. Open episodes are
read back from the store at start, so a restart neither repeats nor forgets them.

Conditions (``now`` is wall-clock time):
- ``log_unreachable``: every pass has failed for ``unreachable_after``;
- ``log_stalled``: no verified progress for ``stall_after`` while entries are left to read, or
  the log's checkpoint unchanged for ``stall_after`` (not for a retired, frozen shard);
- ``lag``: more than ``lag_entries`` entries behind the latest checkpoint, or behind it without
  interruption for ``lag_seconds`` (the time since the monitor last saw itself caught up);
- ``sink_failing``: an alert has waited undelivered in a sink's outbox for ``unreachable_after``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.alerts.routing import Routing
from monitor.config.models import HealthSettings
from monitor.core.findings import (
    Finding,
    FindingKind,
    FindingState,
    HealthType,
    Severity,
    dedup_key,
)
from monitor.core.metrics import DaemonMetrics
from monitor.core.status import LogStatus
from monitor.storage import FindingQuery
from monitor.storage.ports import HealthStore

__all__ = ["HealthMonitor"]

log = logging.getLogger("monitor.health")

SEVERITY = {
    HealthType.LOG_UNREACHABLE: Severity.HIGH,
    HealthType.LOG_STALLED: Severity.HIGH,
    HealthType.LAG: Severity.MEDIUM,
    HealthType.SINK_FAILING: Severity.HIGH,
}
SINK = "sink"  # the ``matched`` field naming the sink of a sink_failing finding
LOG_TYPES = (HealthType.LOG_UNREACHABLE, HealthType.LOG_STALLED, HealthType.LAG)


@dataclass(frozen=True)
class _Condition:
    type: HealthType
    subject: str  # the log, or the sink
    detail: str
    since: float


class HealthMonitor:
    def __init__(
        self,
        store: HealthStore,
        settings: HealthSettings,
        routing: Routing,
        metrics: DaemonMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.routing = routing
        self.metrics = metrics
        self.clock = clock
        self._open: dict[tuple[HealthType, str], int] = {}  # -> finding id
        self._loaded = False

    async def load(self) -> None:
        """Read the open health findings back (a restart continues their episodes)."""
        self._open.clear()
        cursor = None
        while True:
            page = await self.store.findings(
                FindingQuery(
                    kinds=(FindingKind.HEALTH,),
                    states=(FindingState.OPEN, FindingState.ACKNOWLEDGED),
                    limit=1000,
                    cursor=cursor,
                )
            )
            for sf in page.items:
                f = sf.finding
                subject = dict(f.matched).get(SINK) or f.log
                if f.type in set(HealthType) and subject and f.id is not None:
                    self._open[(HealthType(f.type), subject)] = f.id
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        self._loaded = True

    def reload(self) -> None:
        """Read the open findings again at the next evaluation: this replica began leading a
        log whose episodes another replica may have raised or resolved meanwhile."""
        self._loaded = False

    def open_conditions(self) -> set[tuple[HealthType, str]]:
        return set(self._open)

    async def evaluate(
        self,
        statuses: Iterable[LogStatus],
        sinks: Sequence[str],
        disabled: Mapping[str, str] | None = None,
        elsewhere: Collection[str] = (),
    ) -> None:
        """Raise and resolve findings for the current conditions; ``disabled`` maps each sink
        that delivery gave up on (410 Gone) to why: failing at once, whatever waits.
        ``elsewhere``: logs another replica leads, whose episodes are its to raise and
        resolve (their statuses here are not current)."""
        statuses = list(statuses)  # read twice: for the conditions, then for the metrics
        if not self._loaded:
            await self.load()
        now = self.clock()
        found = [c for s in statuses for c in self._log_conditions(s, now)]
        off = disabled or {}
        found += await self._sink_conditions([s for s in sinks if s not in off], now)
        found += [
            _Condition(HealthType.SINK_FAILING, sink, f"delivery to {sink} stopped: {why}", now)
            for sink, why in sorted(off.items())
        ]
        active = {(c.type, c.subject): c for c in found}
        for key, cond in active.items():
            if key not in self._open:
                await self._raise(cond, now)
        kept = set(active) | self._not_over(statuses)
        kept |= {k for k in self._open if k[0] in LOG_TYPES and k[1] in elsewhere}
        for key in [k for k in self._open if k not in kept]:
            await self._resolve(key)
        if self.metrics is not None:
            for s in statuses:
                for t in LOG_TYPES:
                    self.metrics.health.labels(s.name, str(t)).set(int((t, s.name) in self._open))

    @staticmethod
    def _not_over(statuses: Iterable[LogStatus]) -> set[tuple[HealthType, str]]:
        """Log conditions not known to have ended, though not (or not yet) found again: a
        log still failing has not become reachable, and a log no pass has succeeded on since
        the start is unknown, not healthy. (After a restart, statuses start blank: the
        episodes read back stay open until the tailers learn that they ended.)"""
        out: set[tuple[HealthType, str]] = set()
        for s in statuses:
            if s.failing_since is not None and not s.lie:
                out.add((HealthType.LOG_UNREACHABLE, s.name))
            if s.cursor is None:
                out.update((t, s.name) for t in LOG_TYPES)
        return out

    def _log_conditions(self, s: LogStatus, now: float) -> list[_Condition]:
        cfg = self.settings
        out = []
        # a log that lies is not unreachable: its integrity finding says what it did
        if s.failing_since is not None and not s.lie:
            down = now - s.failing_since
            if down >= cfg.unreachable_after.total_seconds():
                out.append(
                    _Condition(
                        HealthType.LOG_UNREACHABLE,
                        s.name,
                        f"every pass has failed for {down:.0f}s ({s.last_reason})",
                        s.failing_since,
                    )
                )
        stall = cfg.stall_after.total_seconds()
        lag = s.lag()
        reachable = not out  # else unreachable says why nothing moves: one alert, not two
        if reachable and lag and s.progress_at is not None and now - s.progress_at >= stall:
            why = f" ({s.lie})" if s.lie else ""
            out.append(
                _Condition(
                    HealthType.LOG_STALLED,
                    s.name,
                    f"no verified progress for {now - s.progress_at:.0f}s with {lag} entries "
                    f"left to read{why}",
                    s.progress_at,
                )
            )
        elif (
            reachable
            and not s.frozen
            and s.size_changed_at is not None
            and now - s.size_changed_at >= stall
        ):
            out.append(
                _Condition(
                    HealthType.LOG_STALLED,
                    s.name,
                    f"the log's checkpoint has not changed for {now - s.size_changed_at:.0f}s "
                    f"(size {s.log_size})",
                    s.size_changed_at,
                )
            )
        if lag is not None and lag > 0:
            behind = now - s.caught_up_at if s.caught_up_at is not None else None
            if lag > cfg.lag_entries or (behind is not None and behind >= cfg.lag_seconds):
                since = s.caught_up_at if s.caught_up_at is not None else now
                shown = "" if behind is None else f", behind for {behind:.0f}s"
                out.append(
                    _Condition(
                        HealthType.LAG,
                        s.name,
                        f"{lag} entries behind the log's latest checkpoint{shown}",
                        since,
                    )
                )
        return out

    async def _sink_conditions(self, sinks: Sequence[str], now: float) -> list[_Condition]:
        limit = self.settings.unreachable_after.total_seconds()
        out = []
        for sink in sinks:
            oldest = await self.store.oldest_undelivered(sink)
            if oldest is None:
                continue
            waited = now - oldest.timestamp()
            if waited >= limit:
                out.append(
                    _Condition(
                        HealthType.SINK_FAILING,
                        sink,
                        f"an alert has waited {waited:.0f}s undelivered for sink {sink}",
                        oldest.timestamp(),
                    )
                )
        return out

    async def _raise(self, c: _Condition, now: float) -> None:
        is_sink = c.type is HealthType.SINK_FAILING
        started = datetime.fromtimestamp(c.since, UTC).isoformat()
        key = dedup_key(FindingKind.HEALTH, c.type, c.subject, started)
        earlier = await self.store.finding_by_key(key)
        if earlier is not None and earlier.finding.state is FindingState.RESOLVED:
            # the same start as an episode already resolved (lag that cleared before the
            # monitor caught up, then came back): a new episode all the same, a new finding
            raised = datetime.fromtimestamp(now, UTC).isoformat()
            key = dedup_key(FindingKind.HEALTH, c.type, c.subject, started, raised)
        finding = Finding(
            kind=FindingKind.HEALTH,
            severity=SEVERITY[c.type],
            dedup_key=key,
            log=None if is_sink else c.subject,
            type=str(c.type),
            matched=((SINK, c.subject),) if is_sink else (),
            detail=c.detail,
        )
        outbox = self.routing.outbox([finding])
        if is_sink:  # never ask a failing sink to carry the news of its own failure
            outbox = tuple(
                type(o)(o.dedup_key, tuple(s for s in o.sinks if s != c.subject)) for o in outbox
            )
        added = await self.store.store_findings([finding], outbox=outbox)
        if added and self.metrics is not None:
            sev = str(finding.severity)
            self.metrics.findings.labels(finding.log or "", str(finding.kind), "", sev).inc()
        stored = await self.store.finding_by_key(finding.dedup_key)
        if stored is not None and stored.finding.id is not None:
            self._open[(c.type, c.subject)] = stored.finding.id
        log.warning(
            "health: %s %s",
            c.type,
            c.subject,
            extra={"fields": {"type": str(c.type), "subject": c.subject, "detail": c.detail}},
        )

    async def _resolve(self, key: tuple[HealthType, str]) -> None:
        finding_id = self._open.pop(key)
        await self.store.resolve_finding(finding_id, "monitor", "the condition cleared")
        log.info(
            "health resolved: %s %s",
            key[0],
            key[1],
            extra={"fields": {"type": str(key[0]), "subject": key[1]}},
        )
