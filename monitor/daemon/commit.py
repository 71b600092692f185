"""Turning proven entries into stored facts, the same way for every log API.

A pass (``v1pass``, ``v2pass``) proves a range of entries; ``Committer`` parses and matches
them and stores the batch (records that matched, findings, their outbox rows, malformed
entries, index_all rows, the new cursor and compact range) in one transaction. It also stores
the lie that stopped a pass. Batches are stored shielded from cancellation: a stop finishes
or abandons a batch as a whole, never half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from monitor.alerts.routing import Routing
from monitor.core.aio import cancel_and_wait
from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.core.metrics import DaemonMetrics
from monitor.daemon.parsing import Chunk, parse_chunk
from monitor.entries import v1 as v1_kinds
from monitor.entries import v2 as v2_kinds
from monitor.rules.engine import RuleEngine
from monitor.storage.batch import Batch, BatchResult
from monitor.storage.logs_state import CheckpointData
from monitor.storage.store import Store
from monitor.tlog.merkle import CompactRangeState
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree
from monitor.trust import CertificateAuthority

__all__ = [
    "Committer",
    "PassContext",
    "PassResult",
    "RawEntry",
    "Start",
    "check_arguments",
    "drive",
    "first_cursor",
]

Start = Literal["tip", "resume"] | int

# the entry kinds a metric names; any other kind a log serves is "unknown" (bounded labels)
KNOWN_KINDS = frozenset(kind for kind, _ in (*v1_kinds.KINDS, *v2_kinds.KINDS))


@dataclass(frozen=True)
class RawEntry:
    """An entry as fetched: its (global) index, leaf bytes, and what v1 serves beside them."""

    index: int
    body: bytes
    integrated_time: int | None = None
    attestation: bytes | None = None


@dataclass(frozen=True)
class PassContext:
    """What a pass of one log needs besides its client: where and how to store.

    ``name`` is the log's name in the store. With ``backfill=(start, end)`` batches advance
    that backfill's own cursor, not the log's. ``planned`` is told how many entries the pass
    will read, once it knows; ``progress`` of every stored batch (entries in it)."""

    name: str
    store: Store
    engine: RuleEngine
    cas: Sequence[CertificateAuthority]
    routing: Routing = field(default_factory=Routing)
    index_all: bool = False
    backfill: tuple[int, int] | None = None
    metrics: DaemonMetrics | None = None
    progress: Callable[[int], None] | None = None
    planned: Callable[[int], None] | None = None


@dataclass(frozen=True)
class PassResult:
    """What one pass did: entries proven and processed, findings newly stored (integrity
    findings included), the cursor it ended at (a global index), the size of the log's
    latest checkpoint, and the lie that stopped it."""

    entries: int
    findings: int
    cursor: int
    log_size: int
    failure: IntegrityFailure | None = None


def check_arguments(start: Start, chunk: int) -> None:
    """What a catch-up refuses before it begins: a chunk below one entry, a negative start
    index (mistakes of the caller, not of the log)."""
    if chunk < 1:
        raise ValueError(f"chunk must be positive, not {chunk}")
    if isinstance(start, int) and start < 0:
        raise ValueError(f"start index {start} is negative")


def first_cursor(ctx: PassContext) -> int:
    """The cursor before anything was stored: a backfill's first index, else 0."""
    return 0 if ctx.backfill is None else ctx.backfill[0]


async def drive(out: Committer, run: Awaitable[PassResult]) -> PassResult:
    """Run a pass, then wait for its last batch to be stored; the result counts it."""
    try:
        draft = await run
    except BaseException:
        with contextlib.suppress(Exception):
            await out.flush()
        raise
    await out.flush()
    result = out.final(draft)
    out.ended(result)
    return result


class Committer:
    def __init__(self, ctx: PassContext) -> None:
        self.ctx = ctx
        self.entries = 0
        self.findings = 0
        # the batch being stored. ``commit`` returns once only the database's own work is
        # left (``store_batch``'s ``committing``: the identity and index_all rows and the
        # COMMIT): the pass then fetches, proves and parses the next chunk meanwhile, which
        # on SQLite runs on the driver's thread without the GIL
        self._pending: asyncio.Future[None] | None = None
        # the log's gauges follow its tailing passes; a backfill's only count
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

    def ended(self, result: PassResult) -> None:
        if self._gauges is not None:
            self._gauges.moved(self.ctx.name, result.cursor, None)
            if result.failure is None and result.cursor >= result.log_size:
                self._gauges.caught_up(self.ctx.name, time.time())

    def plan(self, entries: int) -> None:
        if self.ctx.planned is not None:
            self.ctx.planned(max(0, entries))

    def result(self, cursor: int, log_size: int, failure: IntegrityFailure | None) -> PassResult:
        return PassResult(self.entries, self.findings, cursor, log_size, failure)

    async def commit(
        self,
        cursor: int,
        checkpoint: CheckpointData | None,
        compact_range: CompactRangeState | None,
        entries: Sequence[RawEntry],
        *,
        new_tree: bool = False,
    ) -> None:
        """Parse, match and store proven ``entries``; the cursor moves to ``cursor``. Returns
        once only the database's own work is left of the batch (see ``store_batch``); that
        goes on in the background, its error raised by the next ``flush``, and the next batch
        is stored only after it, so batches land in log order."""
        started = time.perf_counter()
        ctx = self.ctx
        chunk = Chunk(
            ctx.name,
            tuple((e.index, e.body, e.integrated_time, e.attestation) for e in entries),
            ctx.index_all,
            int(time.time()),
        )
        parsed = await parse_chunk(chunk, ctx.engine, ctx.cas)
        batch = Batch(
            ctx.name,
            cursor,
            checkpoint,
            compact_range,
            records=parsed.records,
            findings=parsed.findings,
            malformed=parsed.malformed,
            outbox=ctx.routing.outbox(parsed.findings),
            index_rows=parsed.index_rows,
            new_tree=new_tree,
            backfill=ctx.backfill,
        )
        kinds: dict[str, int] = {}
        for kind, n in parsed.kinds.items():
            label = kind if kind in KNOWN_KINDS else "unknown"
            kinds[label] = kinds.get(label, 0) + n
        if parsed.malformed:
            kinds["malformed"] = len(parsed.malformed)
        await self.flush()  # batches are stored in log order, one at a time
        committing = asyncio.Event()
        task = asyncio.ensure_future(
            self._store_entries(batch, len(entries), kinds, started, committing.set)
        )
        self._pending = task
        waiter = asyncio.ensure_future(committing.wait())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait((waiter,))
        if task.done():
            await self.flush()  # its error, if it failed before committing

    async def _store_entries(
        self,
        batch: Batch,
        entries: int,
        kinds: dict[str, int],
        t0: float,
        committing: Callable[[], None],
    ) -> None:
        ctx = self.ctx
        await self._store_now(batch, committing)
        self.entries += entries
        m = ctx.metrics
        if m is not None:  # counted once stored: a crash before the commit counts nothing
            for kind, n in kinds.items():
                m.entries.labels(ctx.name, kind).inc(n)
            if batch.malformed:
                m.malformed.labels(ctx.name).inc(len(batch.malformed))
            for f in batch.findings:
                if f.rule is not None:  # one per rule an entry matched
                    m.matches.labels(ctx.name, f.rule, str(f.severity)).inc()
            m.batch_seconds.labels(ctx.name).observe(time.perf_counter() - t0)
        if self._gauges is not None:
            self._gauges.moved(ctx.name, batch.cursor, time.time())
        if ctx.progress is not None:
            ctx.progress(entries)

    async def flush(self) -> None:
        """Wait for the batch being stored (its error, if any, is raised here). A cancelled
        caller still waits for the transaction to end, then is cancelled."""
        task, self._pending = self._pending, None
        if task is None:
            return
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise

    def final(self, draft: PassResult) -> PassResult:
        """``draft`` with the counts of everything stored (call after ``flush``)."""
        return dataclasses.replace(draft, entries=self.entries, findings=self.findings)

    async def seed(
        self, cursor: int, checkpoint: CheckpointData, state: VerifiedTree, *, new_tree: bool
    ) -> None:
        """Store a start point (no entries): the cursor and the compact range to prove from."""
        await self.store(
            Batch(
                self.ctx.name,
                cursor,
                checkpoint,
                state.range,
                new_tree=new_tree,
                backfill=self.ctx.backfill,
            )
        )
        if self._gauges is not None:
            self._gauges.moved(self.ctx.name, cursor, None)

    async def fail(
        self,
        e: IntegrityFailure,
        state: VerifiedTree | None,
        cursor: int,
        *,
        tree_start: int = 0,
    ) -> None:
        """Store the integrity finding, moving nothing. Its key names the verified tree the
        log failed to extend and how: retries of the same lie find the same finding open.
        ``tree_start`` turns the tree-local index of the evidence into a global one (v1)."""
        ctx = self.ctx
        kind = FindingKind.INTEGRITY_FAILURE
        size, root = (None, None) if state is None else (state.size, state.root_hash.hex())
        key = dedup_key(kind, e.type, ctx.name, size, root)
        index = e.evidence.get("index")
        finding = Finding(
            kind=kind,
            severity=Severity.CRITICAL,
            dedup_key=key,
            log=ctx.name,
            index=index + tree_start if isinstance(index, int) else None,
            type=str(e.type),
            detail=e.message,
        )
        batch = Batch(
            ctx.name,
            cursor,
            findings=(finding,),
            evidence={key: e.evidence},
            outbox=ctx.routing.outbox([finding]),
            backfill=ctx.backfill,
        )
        await self.store(batch)
        if ctx.metrics is not None:
            ctx.metrics.integrity_failures.labels(ctx.name, str(e.type)).inc()

    async def store(self, batch: Batch) -> BatchResult:
        """Store ``batch`` after the batch in flight; a cancellation waits for its
        transaction to end either way."""
        await self.flush()
        return await self._store_now(batch)

    async def _store_now(
        self, batch: Batch, committing: Callable[[], None] | None = None
    ) -> BatchResult:
        task = asyncio.ensure_future(self.ctx.store.store_batch(batch, committing=committing))
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise
        self.findings += result.findings
        m = self.ctx.metrics
        if m is not None and result.findings:
            name = self.ctx.name
            if result.findings == len(batch.findings):
                for f in batch.findings:
                    m.findings.labels(name, str(f.kind), f.rule or "", str(f.severity)).inc()
            else:  # some were stored before (a batch overlapping a backfill): which is unknown
                m.findings.labels(name, "mixed", "", "").inc(result.findings)
        return result
