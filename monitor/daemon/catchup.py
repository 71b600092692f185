"""One verified catch-up pass over one log, into the store, whatever the log's API.

The pass reads where the log stands in the store (or seeds a start point), reads the log's
latest signed tree heads, proves that they extend what was verified (the log's consistency
proof), then walks the rest of the log in chunks, tree after tree (a Rekor v1 log that
rotated: the old tree up to its final size, then the new one from its first entry). A chunk
is proven before anything of it is kept: a proof that its end is a prefix of the signed tree
(the log's ``LogSource`` says how), and its leaf hashes must extend the verified compact range
to exactly that prefix's root (``verify_extension``). Only then is it parsed, matched and
stored, with the new compact range and cursor, in ONE batch (``BatchWriter``).

The reads of a tree are fetched ahead, in order, within the log's memory budget
(``prefetch.Window``); a chunk is cut short (its end proven on the spot) when it holds a
quarter of the budget.

When the log lies (``IntegrityFailure``), the pass stores one critical ``integrity_failure``
finding with the evidence and stops there: the cursor never moves past what was proven. An
entry that does not hash into the tree is narrowed down to, and the entries before it are
kept. Data of a signed tree that cannot be had is an outage until the log's
``missing_after``, then a ``missing_entries`` failure (``withheld``); entries a Rekor v1 log
answers without are one at once, as is a head of more entries than a log can hold.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MissingEntriesError,
    TransientLogError,
)
from monitor.core.findings import IntegrityType
from monitor.daemon.context import PassContext, PassResult, Start, check_arguments
from monitor.daemon.passmetrics import PassMetrics
from monitor.daemon.prefetch import Window
from monitor.daemon.resume import Resume, load_resume
from monitor.daemon.source import (
    LogSource,
    LogView,
    Part,
    RawEntry,
    Read,
    Target,
    Tree,
    checkpoint_failure,
)
from monitor.daemon.withheld import not_served, withheld
from monitor.daemon.writer import BatchWriter
from monitor.storage.logs_state import CheckpointData
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.proofs import (
    Anchor,
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    check_extends,
    verify_extension,
)

__all__ = ["catch_up"]

log = logging.getLogger(__name__)

# where a walk of one tree got to: the proven tree, its cursor (global), the lie that stopped it
_Reached = tuple[VerifiedTree, int, IntegrityFailure | None]


async def catch_up(
    source: LogSource, ctx: PassContext, *, start: Start = "resume", chunk: int = 1024
) -> PassResult:
    """Catch the log ``ctx.name`` up to its latest signed tree head, proving every entry
    stored.

    ``start`` (a global index, or ``"tip"``/``"resume"`` for the end of the log) applies only
    when the store holds no verified state for the log (the stored state always wins: the
    cursor never moves back); the start point is stored at once, with no entries. A backfill
    (``ctx.backfill``) runs from its first index to its end. ``TransientLogError``,
    ``LogResponseError`` and ``StorageError`` pass through; whatever was stored before them
    stays valid.
    """
    check_arguments(start, chunk)
    return await _Pass(source, ctx).drive(start, chunk)


class _Pass:
    def __init__(self, source: LogSource, ctx: PassContext) -> None:
        self.source = source
        self.ctx = ctx
        self.metrics = PassMetrics(ctx)
        self.out = BatchWriter(ctx, self.metrics.stored)
        self.owed = (ctx.name, ctx.backfill)  # tailing and each backfill are owed data apart

    async def drive(self, start: Start, chunk: int) -> PassResult:
        """Run the pass, then wait for its last batch to be stored; the result counts it."""
        try:
            draft = await self.run(start, chunk)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.out.flush()
            raise
        await self.out.flush()
        return self.metrics.ended(draft)

    def result(self, cursor: int, size: int, failure: IntegrityFailure | None) -> PassResult:
        return PassResult(0, 0, cursor, size, failure)  # the counts are the metrics'

    async def run(self, start: Start, chunk: int) -> PassResult:
        ctx, source = self.ctx, self.source
        resume = await load_resume(ctx.store, ctx.name, ctx.backfill)
        if resume is None:
            await ctx.store.register_log(ctx.name, source.api, source.url)
        at = ctx.first_cursor if resume is None else resume.cursor
        try:
            view = await source.heads()
        except CheckpointError as e:
            failure = checkpoint_failure(e)
            if resume is None:
                await self.out.lie(failure, None, at, 0)
            else:
                await self.out.lie(failure, resume.tree, at, resume.tree_start)
            return self.result(at, at, failure)
        if not await self._accepted(view, at):
            self.metrics.signed(view.size)
            return self.result(at, view.size, None)
        size = view.size
        self.metrics.signed(size)
        end = size
        if ctx.backfill is not None:
            start, end = ctx.backfill
            if end > size:
                raise ValueError(f"backfill end {end} is beyond the log's size {size}")
        if resume is None:
            first = size if start in ("tip", "resume") else int(start)
            if first > size:
                raise ValueError(f"start index {first} is beyond the log's size {size}")
            tree = view.holding(first)
            try:
                state, cp = await source.prefix(tree, first - tree.start)
            except (IntegrityFailure, CheckpointError) as e:
                failure = e if isinstance(e, IntegrityFailure) else checkpoint_failure(e)
                await self.out.lie(failure, None, at, tree.start)
                return self.result(at, size, failure)
            await self.out.seed(first, CheckpointData.from_signed(cp), state)
            resume = Resume(first, state, None)
        return await self._walk(view, resume, end, chunk)

    def _data(self, tree: Tree) -> CheckpointData:
        """The checkpoint to store with a batch, with its cosigners when witnesses are
        configured (a backfill checks none: it stores them unchecked, as None)."""
        gate = self.ctx.witnesses if self.ctx.backfill is None else None
        return CheckpointData.from_signed(
            tree.head, None if gate is None else gate.cosignatures(tree.head)
        )

    async def _accepted(self, view: LogView, at: int) -> bool:
        """Whether the pass may go on from ``at`` under ``view``: not when its checkpoint
        lacks the witness quorum under ``require`` (the monitor waits for a witnessed one),
        nor while a split view holds the log (until a person resolves it)."""
        ctx = self.ctx
        if ctx.witnesses is not None and ctx.backfill is None:
            verdict = ctx.witnesses.check(view.trees[-1].head)
            if verdict.finding is not None:
                await self.out.finding(verdict.finding, at)
            if not verdict.accept:
                return False
        return ctx.hold is None or at < ctx.hold

    async def _walk(self, view: LogView, resume: Resume, end: int, chunk: int) -> PassResult:
        """Every tree from the one holding the cursor, until ``end`` or the growing tree."""
        size = view.size
        cursor, state, anchor = resume.cursor, resume.tree, resume.anchor
        trees = view.trees
        self.metrics.planned(end - cursor)
        while True:
            pos = next((i for i, t in enumerate(trees) if t.tree_id == state.tree_id), None)
            if pos is None:
                raise LogResponseError(
                    f"tree {state.tree_id}, which holds entry {cursor}, is no longer listed"
                )
            tree = trees[pos]
            if tree.start != cursor - state.size:
                raise LogResponseError(
                    f"tree {tree.tree_id} now starts at global index {tree.start}, "
                    f"not {cursor - state.size}: the log's shard layout changed"
                )
            renamed = _note_rename(self.ctx.name, state, tree)
            try:
                await self._advance(tree, state, anchor)
            except IntegrityFailure as e:
                await self.out.lie(e, state, cursor, tree.start)
                return self.result(cursor, size, e)
            except (TransientLogError, LogResponseError) as e:
                failure = self._withheld(e, state, tree)
                if failure is None:
                    raise
                await self.out.lie(failure, state, cursor, tree.start)
                return self.result(cursor, size, failure)
            self.metrics.verified(tree.end)
            if renamed and state.size == tree.head.size:
                # nothing new to store: keep the note under the new name now, so that the
                # change is told once and the checkpoints hold both texts
                await self.out.entries(cursor, self._data(tree), state.range, [])
            state, cursor, lie = await self._tree(tree, state, cursor, min(end, tree.end), chunk)
            if lie is not None:
                await self.out.lie(lie, state, cursor, tree.start)
                return self.result(cursor, size, lie)
            anchor = None
            if cursor >= end or not tree.final or pos + 1 >= len(trees):
                self.source.owed.served(self.owed)  # everything signed is stored
                return self.result(cursor, size, None)
            # the tree is finished (its final, signed size reached): the next one starts here
            nxt = trees[pos + 1]
            state = VerifiedTree.empty(nxt.head, nxt.tree_id)
            await self.out.seed(cursor, self._data(nxt), state)

    async def _advance(self, tree: Tree, state: VerifiedTree, anchor: Anchor | None) -> None:
        """The head must extend the stored checkpoint (when larger than the proven tree: a
        pass stopped inside its range) and the proven tree: not shrink, change or fork."""
        cp = tree.head
        if anchor is not None:
            check_extends(cp.origin, anchor, cp, await self._consistency(tree, anchor.size))
        advance_checkpoint(state, cp, await self._consistency(tree, state.size))

    async def _consistency(self, tree: Tree, old_size: int) -> list[bytes] | None:
        """The log's proof from ``old_size`` to the head; None where there is nothing to
        prove (an empty tree, the same size) or a smaller head (a lie without one)."""
        if 0 < old_size < tree.head.size:
            return await self.source.consistency_proof(tree, old_size)
        return None

    async def _tree(
        self, tree: Tree, state: VerifiedTree, cursor: int, limit: int, chunk: int
    ) -> _Reached:
        """Prove and store [cursor, limit) of ``tree``, read ahead and processed in order."""
        source = self.source
        ahead: Window[Read, Part] = Window(
            lambda read: source.read(tree, read),
            source.reads(tree, cursor, limit, chunk),
            budget=source.budget,
            worst=source.worst,
            held=lambda part: part.held,
            depth=source.prefetch_depth(chunk),
        )
        cut_at = source.budget.limit // 4
        pending: list[RawEntry] = []
        lent = 0
        try:
            async with ahead:
                async for taken in ahead:
                    read, part = taken.piece, taken.result
                    pending += part.entries
                    lent += taken.held
                    waits = part.proof is None and not read.ends_chunk
                    if waits and (lent < cut_at or not read.may_cut):
                        continue  # the chunk goes on (or its proof comes next)
                    entries, pending = pending, []
                    state, cursor, lie = await self._store(tree, state, cursor, entries, part.proof)
                    del entries  # their bodies are not kept while the next chunk is read
                    ahead.release(lent)
                    lent = 0
                    if lie is not None:
                        return state, cursor, lie
        except (TransientLogError, LogResponseError) as e:
            if source.proofs_with_entries:  # what was read before is stored first
                state, cursor, lie = await self._store(tree, state, cursor, pending, None)
                if lie is not None:
                    return state, cursor, lie
            if isinstance(e, MissingEntriesError):
                return state, cursor, not_served(e, state, tree)
            failure = self._withheld(e, state, tree)
            if failure is None:
                raise
            return state, cursor, failure
        return state, cursor, None

    async def _store(
        self,
        tree: Tree,
        state: VerifiedTree,
        cursor: int,
        entries: Sequence[RawEntry],
        proof: Target | None,
    ) -> _Reached:
        """Prove ``entries`` (those after ``state``) against ``proof`` (or the proof of their
        end) and store what is proven; the state reached and the lie that stopped it."""
        if not entries:
            return state, cursor, None
        target = proof if proof is not None else await self.source.end_proof(tree, entries)
        good, lie = await self._prove(tree, state, entries, target)
        done = good.size - state.size
        if done:
            cursor += done
            await self.out.entries(cursor, self._data(tree), good.range, entries[:done])
            self.source.owed.served(self.owed)
        return good, cursor, lie

    async def _prove(
        self, tree: Tree, state: VerifiedTree, entries: Sequence[RawEntry], target: Target
    ) -> tuple[VerifiedTree, IntegrityFailure | None]:
        """The longest proven extension of ``state`` by ``entries``, and the lie that stopped
        it. A chunk whose entries do not hash into the tree is narrowed down to its first bad
        entry, so that the failure names it and the entries before it are kept."""
        hashes = [leaf_hash(e.body) for e in entries]
        try:
            if isinstance(target, IntegrityFailure):
                raise target
            return verify_extension(state, target, hashes, state.size), None
        except IntegrityFailure as e:
            if e.type is not IntegrityType.ENTRY_NOT_IN_TREE:
                return state, e
            return await self.source.narrow(tree, state, entries, hashes, e)

    def _withheld(
        self, error: TransientLogError | LogResponseError, state: VerifiedTree, tree: Tree
    ) -> IntegrityFailure | None:
        """The data of the signed head beyond ``state`` could not be had: a
        ``missing_entries`` failure once it is owed long enough (None before, or when nothing
        is owed: the failure was not about entries)."""
        if state.size >= tree.head.size:
            return None
        source = self.source
        return withheld(
            source.owed,
            self.owed,
            source.missing_after,
            error,
            checkpoint=tree.head,
            verified=state,
            tree_id=tree.tree_id,
        )


def _note_rename(name: str, state: VerifiedTree, tree: Tree) -> bool:
    """Rekor v1 signs under its configured hostname, which a restarted pod changes: the tree
    (its ID, key and history) is the same, so this is neither a fork nor a lie. Said once, at
    the change; the checkpoints table keeps the notes under both names."""
    before, now = state.origin, tree.head.origin
    if before != now:
        log.info(
            "log signs under a new name",
            extra={"fields": {"log": name, "tree_id": str(tree.tree_id), "was": before,
                              "now": now}},
        )  # fmt: skip
    return before != now
