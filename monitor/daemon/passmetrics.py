"""What a pass tells as it goes: its counts, the daemon's metrics of the log, its progress.

The log's gauges (signed and verified sizes, cursor, caught up) follow its tailing passes; a
backfill's batches only count. Batches count once stored (``BatchWriter`` tells ``stored``
after the commit): a crash before it counts nothing.
"""

from __future__ import annotations

import dataclasses
import time

from monitor.daemon.context import PassContext, PassResult
from monitor.daemon.writer import Stored
from monitor.entries import v1 as v1_kinds
from monitor.entries import v2 as v2_kinds

__all__ = ["PassMetrics"]

# the entry kinds a metric names; any other kind a log serves is "unknown" (bounded labels)
KNOWN_KINDS = frozenset(kind for kind, _ in (*v1_kinds.KINDS, *v2_kinds.KINDS))


class PassMetrics:
    def __init__(self, ctx: PassContext) -> None:
        self.ctx = ctx
        self.entries = 0  # proven and stored by this pass
        self.findings = 0  # newly stored by this pass
        self._gauges = ctx.metrics if ctx.backfill is None else None
        if ctx.metrics is not None:
            ctx.metrics.known(ctx.name)

    def signed(self, size: int) -> None:
        """The pass read a checkpoint of ``size`` entries whose signature verifies."""
        if self._gauges is not None:
            self._gauges.signed_checkpoint(self.ctx.name, size)

    def verified(self, size: int) -> None:
        """The pass proved the checkpoint of ``size`` entries extends the stored tree."""
        if self._gauges is not None:
            self._gauges.verified_checkpoint(self.ctx.name, size, time.time())

    def planned(self, entries: int) -> None:
        if self.ctx.planned is not None:
            self.ctx.planned(max(0, entries))

    def stored(self, s: Stored) -> None:
        """A batch of the pass was committed."""
        ctx, m, batch = self.ctx, self.ctx.metrics, s.batch
        name = ctx.name
        self.findings += s.result.findings
        if m is not None and s.result.findings:
            if s.result.findings == len(batch.findings):
                for f in batch.findings:
                    m.findings.labels(name, str(f.kind), f.rule or "", str(f.severity)).inc()
            else:  # some were stored before (a batch overlapping a backfill): which is unknown
                m.findings.labels(name, "mixed", "", "").inc(s.result.findings)
        if s.what == "seed":
            if self._gauges is not None:
                self._gauges.moved(name, batch.cursor, None)
        elif s.what == "lie":
            if m is not None:
                for f in batch.findings:
                    m.integrity_failures.labels(name, f.type or "").inc()
        elif s.what == "entries":
            self._entries(s)

    def _entries(self, s: Stored) -> None:
        ctx, m, batch = self.ctx, self.ctx.metrics, s.batch
        name = ctx.name
        self.entries += s.entries
        if m is not None:
            for kind, n in self._kinds(s).items():
                m.entries.labels(name, kind).inc(n)
            if batch.malformed:
                m.malformed.labels(name).inc(len(batch.malformed))
            for f in batch.findings:
                if f.rule is not None:  # one per rule an entry matched
                    m.matches.labels(name, f.rule, str(f.severity)).inc()
            m.batch_seconds.labels(name).observe(s.seconds)
        if self._gauges is not None:
            self._gauges.moved(name, batch.cursor, time.time())
        if ctx.progress is not None:
            ctx.progress(s.entries)

    def ended(self, draft: PassResult) -> PassResult:
        """``draft`` with the counts of everything stored (every batch committed), and the
        gauges that follow the end of a pass."""
        result = dataclasses.replace(draft, entries=self.entries, findings=self.findings)
        if self._gauges is not None:
            self._gauges.moved(self.ctx.name, result.cursor, None)
            if result.failure is None and result.cursor >= result.log_size:
                self._gauges.caught_up(self.ctx.name, time.time())
        return result

    @staticmethod
    def _kinds(s: Stored) -> dict[str, int]:
        """Entries by kind label; malformed ones apart."""
        kinds: dict[str, int] = {}
        for kind, n in (s.kinds or {}).items():
            label = kind if kind in KNOWN_KINDS else "unknown"
            kinds[label] = kinds.get(label, 0) + n
        if s.batch.malformed:
            kinds["malformed"] = len(s.batch.malformed)
        return kinds
