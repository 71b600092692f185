"""Storing what a pass proved, a batch at a time, in log order.

``BatchWriter`` turns proven entries into one batch (the records that matched, findings and
their outbox rows, malformed entries, index_all rows, the new cursor and compact range) and
stores it in one transaction; it stores a pass's start point (a seed) and the lie that stopped
it the same way. Batches are stored shielded from cancellation: a stop finishes or abandons a
batch as a whole, never half of one. Each stored batch is told to ``stored`` (the pass's
metrics), once its transaction committed.

The overlap: ``entries`` starts its chunk's parse (on the parse workers, if any) and returns
once the batch before it has only the database's own work left (the identity and index_all
rows, the COMMIT: ``store_batch``'s ``committing``). So the pass fetches and proves the next
chunk while this one is parsed and the one before is committed (on SQLite the driver's thread
does that without the GIL). Each batch is stored after the one before it, and never when that
one failed; an error is raised by the next call or by ``flush``. At most three chunks are in
flight: one committing, one being parsed, one being fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.core.aio import cancel_and_wait
from monitor.core.findings import Finding, FindingKind, Severity, dedup_key
from monitor.daemon.context import PassContext
from monitor.daemon.parsing import Chunk, parse_chunk
from monitor.daemon.source import RawEntry
from monitor.storage.batch import Batch, BatchResult
from monitor.storage.logs_state import CheckpointData
from monitor.tlog.merkle import CompactRangeState
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree

__all__ = ["BatchWriter", "Stored"]


@dataclass(frozen=True)
class Stored:
    """A batch once committed: proven entries (``what="entries"``: how many, parsed by kind
    as served, seconds from the start of their parse), a start point, a lie, or a finding
    about the log (its checkpoints unwitnessed)."""

    what: Literal["entries", "seed", "lie", "finding"]
    batch: Batch
    result: BatchResult
    entries: int = 0
    kinds: Mapping[str, int] | None = None
    seconds: float = 0.0


class BatchWriter:
    def __init__(self, ctx: PassContext, stored: Callable[[Stored], None]) -> None:
        self.ctx = ctx
        self.stored = stored
        self._pending: asyncio.Future[None] | None = None  # the batch being committed
        self._committing: asyncio.Event | None = None  # set once only its COMMIT is left

    async def entries(
        self,
        cursor: int,
        checkpoint: CheckpointData,
        compact_range: CompactRangeState,
        entries: Sequence[RawEntry],
    ) -> None:
        """Parse, match and store proven ``entries``; the cursor moves to ``cursor``. The
        parse starts at once (on the parse workers, if any); the call returns once the batch
        before this one has only the database's own work left (see the module docstring), so
        that the pass fetches and proves the next chunk while this one is parsed."""
        started = time.perf_counter()
        ctx = self.ctx
        chunk = Chunk(
            ctx.name,
            tuple((e.index, e.body, e.integrated_time, e.attestation) for e in entries),
            ctx.index_all,
            int(time.time()),
        )
        if ctx.parser is None:
            parsing = asyncio.ensure_future(parse_chunk(chunk, ctx.engine, ctx.cas))
        else:
            parsing = asyncio.ensure_future(ctx.parser.parse(chunk, ctx.engine, ctx.cas))
        del chunk  # the bodies go once parsed
        count = len(entries)
        prev, prev_committing = self._pending, self._committing
        committing = asyncio.Event()

        async def parse_then_store() -> None:
            try:
                if prev is not None:
                    await asyncio.shield(prev)  # batches are stored in log order
                parsed = await parsing
            except BaseException:
                await cancel_and_wait((parsing,))
                raise
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
                backfill=ctx.backfill,
                lease=ctx.lease,
            )
            result = await self._store_now(batch, committing.set)
            seconds = time.perf_counter() - started
            self.stored(Stored("entries", batch, result, count, parsed.kinds, seconds))

        self._pending, self._committing = asyncio.ensure_future(parse_then_store()), committing
        if prev is None or prev_committing is None:
            return
        waiter = asyncio.ensure_future(prev_committing.wait())
        try:
            await asyncio.wait((prev, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait((waiter,))
        if prev.done() and not prev.cancelled() and prev.exception() is not None:
            await self.flush()  # its error, before this batch could be stored

    async def seed(self, cursor: int, checkpoint: CheckpointData, state: VerifiedTree) -> None:
        """Store a start point (no entries): the cursor and the compact range to prove from.
        It starts a tree: its checkpoint and compact range replace the stored ones."""
        batch = Batch(
            self.ctx.name,
            cursor,
            checkpoint,
            state.range,
            new_tree=True,
            backfill=self.ctx.backfill,
            lease=self.ctx.lease,
        )
        self.stored(Stored("seed", batch, await self._store(batch)))

    async def lie(
        self, e: IntegrityFailure, state: VerifiedTree | None, cursor: int, tree_start: int
    ) -> None:
        """Store the integrity finding, moving nothing. Its key names the verified tree the
        log failed to extend and how: retries of the same lie find the same finding open.
        ``tree_start`` turns the tree-local index of the evidence into a global one."""
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
            lease=ctx.lease,
        )
        self.stored(Stored("lie", batch, await self._store(batch)))

    async def finding(self, finding: Finding, cursor: int) -> None:
        """Store a finding about the log itself (not an entry's, not a lie), moving nothing."""
        ctx = self.ctx
        batch = Batch(
            ctx.name,
            cursor,
            findings=(finding,),
            outbox=ctx.routing.outbox([finding]),
            backfill=ctx.backfill,
            lease=ctx.lease,
        )
        self.stored(Stored("finding", batch, await self._store(batch)))

    async def flush(self) -> None:
        """Wait for the batch being committed (its error, if any, is raised here). A cancelled
        caller still waits for the transaction to end, then is cancelled."""
        task, self._pending, self._committing = self._pending, None, None
        if task is None:
            return
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise

    async def _store(self, batch: Batch) -> BatchResult:
        """Store ``batch`` after the batch in flight."""
        await self.flush()
        return await self._store_now(batch)

    async def _store_now(
        self, batch: Batch, committing: Callable[[], None] | None = None
    ) -> BatchResult:
        """One transaction; a cancellation waits for it to end either way."""
        task = asyncio.ensure_future(self.ctx.store.store_batch(batch, committing=committing))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise
