"""One verified catch-up pass over one Rekor v1 log (all of its trees), into the store.

Rekor v1 is sharded: the log is a sequence of trees, each with its own tree ID, checkpoints and
local indexes; global index = the tree's start + local index. The pass reads the stored state
(the cursor, a global index, and the compact range of the tree holding it), verifies the
LogInfo tree heads, proves the current tree's head extends the stored tree (the log's
consistency proof), then walks the tree in chunks. A chunk is proven before anything of it is
kept: the inclusion proof that Rekor serves with its last entry proves the chunk's end a prefix
of a signed tree, and the chunk's leaf hashes must extend the stored compact range to exactly
that prefix's root; the chunk that reaches the head is checked against the head itself.

When the log rotates, the old tree is finished up to the final size its (signed) inactive tree
head gives, then the new tree starts from its first entry, in the same pass: no restart.

Entries are fetched in batches of 10, ahead of the chunk being proven, within the log's memory
budget (``prefetch.Window``); a chunk is cut short (and proven by the inclusion proof of its
last entry) when it holds a quarter of the budget, so entries of a megabyte are stored a few
at a time rather than a thousand.

When the log lies the pass stores one ``integrity_failure`` finding and stops; an entry that does
not hash into the tree is found through its own inclusion proof, and the entries before it are
kept. Entries the log will not serve are a lie as well: the signed tree holds them
(``missing_entries``): at once when a batch answer leaves them out and asking again does not
bring them, after the log's ``missing_after`` when they cannot be had at all (``withheld``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from monitor.core.errors import (
    CheckpointError,
    LogResponseError,
    MissingEntriesError,
    TransientLogError,
)
from monitor.core.findings import IntegrityType
from monitor.daemon.commit import (
    Committer,
    PassContext,
    PassResult,
    RawEntry,
    Start,
    check_arguments,
    drive,
)
from monitor.daemon.prefetch import Window, chunks
from monitor.daemon.state import Resume, begin_pass
from monitor.daemon.v2pass import checkpoint_failure
from monitor.daemon.withheld import owed_key, withheld
from monitor.logclient.v1 import BATCH_SIZE, LogInfo, RekorV1Client, Shard, TreeHead, V1Entry
from monitor.storage.logs_state import CheckpointData
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.proofs import (
    Anchor,
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    check_extends,
    seed_from_inclusion,
    verify_extension,
)

__all__ = ["catch_up_v1"]

PREFETCH = 4  # chunks of batches in flight ahead of the one being proven and stored

log = logging.getLogger(__name__)


async def catch_up_v1(
    client: RekorV1Client,
    ctx: PassContext,
    *,
    start: Start = "resume",
    chunk: int = 1024,
) -> PassResult:
    """Catch the log ``ctx.name`` up to its current tree head, proving every entry stored.

    ``start`` (a global index, or ``"tip"``/``"resume"`` for the end of the log) applies only
    when nothing is stored for the log; a backfill (``ctx.backfill``) runs from its first index
    to its end. ``TransientLogError``, ``LogResponseError`` and ``StorageError`` pass through;
    whatever was stored before them stays valid.
    """
    check_arguments(start, chunk)
    run = _Pass(client, ctx)
    return await drive(run.out, run.run(start, chunk))


def _log_size(info: LogInfo) -> int:
    last = info.shards()[-1]
    return last.start + last.size


@dataclass(frozen=True)
class _Batch:
    """Entries [first, stop) asked in one request; ``ends_chunk``: the last of its chunk."""

    first: int
    stop: int
    ends_chunk: bool


def _batches(first: int, end: int, chunk: int) -> Iterator[_Batch]:
    for a, b in chunks(first, end, chunk):
        for lo in range(a, b, BATCH_SIZE):
            hi = min(b, lo + BATCH_SIZE)
            yield _Batch(lo, hi, hi == b)


def _held(entries: Sequence[V1Entry]) -> int:
    return sum(e.held for e in entries)


class _Pass:
    def __init__(self, client: RekorV1Client, ctx: PassContext) -> None:
        self.client = client
        self.ctx = ctx
        self.out = Committer(ctx)
        self.owed = owed_key(ctx)

    async def run(self, start: Start, chunk: int) -> PassResult:
        ctx = self.ctx
        resume, at = await begin_pass(ctx, "v1", self.client.log.base_url)
        try:
            info = await self.client.log_info()
        except CheckpointError as e:
            failure = checkpoint_failure(e)
            tree = None if resume is None else resume.tree
            start_of = 0 if resume is None else resume.tree_start
            await self.out.fail(failure, tree, at, tree_start=start_of)
            return self.out.result(at, at, failure)
        size = _log_size(info)
        self.out.signed(size)
        end = size
        if ctx.backfill is not None:
            start, end = ctx.backfill
            if end > size:
                raise ValueError(f"backfill end {end} is beyond the log's size {size}")
        if resume is None:
            first = size if start in ("tip", "resume") else int(start)
            if first > size:
                raise ValueError(f"start index {first} is beyond the log's size {size}")
            shard, _ = info.to_local(first)
            try:
                tree, cp = await self._seed(info, first)
            except IntegrityFailure as e:
                await self.out.fail(e, None, first, tree_start=shard.start)
                return self.out.result(first, size, e)
            except CheckpointError as e:
                failure = checkpoint_failure(e)
                await self.out.fail(failure, None, first, tree_start=shard.start)
                return self.out.result(first, size, failure)
            await self.out.seed(first, cp, tree, new_tree=True)
            resume = Resume(first, tree, None)
        return await self._walk(info, resume, end, chunk)

    async def _seed(self, info: LogInfo, first: int) -> tuple[VerifiedTree, CheckpointData]:
        """The proven prefix of the tree holding ``first`` that ends just before it."""
        shard, local = info.to_local(first)
        head = _head(info, shard)
        if local == 0:
            return VerifiedTree.empty(head.checkpoint, shard.tree_id), _data(head)
        (entry,) = await self.client.batch([first - 1])
        proof = entry.inclusion
        if proof is None:
            raise LogResponseError(f"entry {first - 1} was served without an inclusion proof")
        cp = self.client.verify_checkpoint(proof.checkpoint, shard.tree_id)
        tree = seed_from_inclusion(
            shard.tree_id, local - 1, leaf_hash(entry.body), proof.hashes, cp
        )
        return tree, CheckpointData.from_signed(cp)

    async def _walk(self, info: LogInfo, resume: Resume, end: int, chunk: int) -> PassResult:
        size = _log_size(info)
        cursor, state, anchor = resume.cursor, resume.tree, resume.anchor
        shards = info.shards()
        self.out.plan(end - cursor)
        while True:
            pos = next((i for i, s in enumerate(shards) if s.tree_id == state.tree_id), None)
            if pos is None:
                raise LogResponseError(
                    f"tree {state.tree_id}, which holds entry {cursor}, is no longer listed"
                )
            shard = shards[pos]
            if shard.start != cursor - state.size:
                raise LogResponseError(
                    f"tree {shard.tree_id} now starts at global index {shard.start}, "
                    f"not {cursor - state.size}: the log's shard layout changed"
                )
            head = _head(info, shard)
            renamed = _note_rename(self.ctx.name, state, head)
            try:
                await self._advance(state, anchor, head)
            except IntegrityFailure as e:
                await self.out.fail(e, state, cursor, tree_start=shard.start)
                return self.out.result(cursor, size, e)
            except (TransientLogError, LogResponseError) as e:
                failure = self._withheld(e, state, head)
                if failure is None:
                    raise
                await self.out.fail(failure, state, cursor, tree_start=shard.start)
                return self.out.result(cursor, size, failure)
            self.out.verified(shard.start + head.size)
            if renamed and state.size == head.size:
                # nothing new to store: keep the note under the new name now, so that the
                # change is told once and the checkpoints hold both texts
                await self.out.commit(cursor, _data(head), state.range, [])
            limit = min(end, shard.start + head.size)
            state, cursor, lie = await self._tree(
                state, cursor, head, shard, limit=limit, chunk=chunk
            )
            if lie is not None:
                await self.out.fail(lie, state, cursor, tree_start=shard.start)
                return self.out.result(cursor, size, lie)
            anchor = None
            if cursor >= end or shard.active or pos + 1 >= len(shards):
                self.client.owed.served(self.owed)  # everything signed is stored
                return self.out.result(cursor, size, None)
            # the tree is finished (its final, signed size reached): the next one starts here
            nxt = shards[pos + 1]
            nxt_head = _head(info, nxt)
            state = VerifiedTree.empty(nxt_head.checkpoint, nxt.tree_id)
            await self.out.seed(cursor, _data(nxt_head), state, new_tree=True)

    async def _tree(
        self,
        state: VerifiedTree,
        cursor: int,
        head: TreeHead,
        shard: Shard,
        *,
        limit: int,
        chunk: int,
    ) -> tuple[VerifiedTree, int, IntegrityFailure | None]:
        """Prove and store [cursor, limit) of one tree, batches fetched ahead and processed in
        order, in chunks of ``chunk`` entries (or a quarter of the budget); the state reached,
        its cursor, and the lie that stopped it."""
        client = self.client
        ahead: Window[_Batch, list[V1Entry]] = Window(
            self._batch,
            _batches(cursor, limit, chunk),
            budget=client.budget,
            worst=lambda b: client.batch_cap(b.stop - b.first),
            held=_held,
            depth=PREFETCH * -(-chunk // BATCH_SIZE),
        )
        cut_at = client.budget.limit // 4
        pending: list[V1Entry] = []
        lent = 0
        async with ahead:
            batches = aiter(ahead)
            while True:
                try:
                    taken = await anext(batches)
                except StopAsyncIteration:
                    return state, cursor, None
                except (TransientLogError, LogResponseError) as e:
                    # what was fetched before is stored first: the failure is after it
                    state, cursor, lie = await self._store(state, cursor, head, shard, pending)
                    if lie is not None:
                        return state, cursor, lie
                    if isinstance(e, MissingEntriesError):
                        return state, cursor, _missing(e, state, head, shard)
                    failure = self._withheld(e, state, head)
                    if failure is None:
                        raise
                    return state, cursor, failure
                pending += taken.result
                lent += taken.held
                if not taken.piece.ends_chunk and lent < cut_at:
                    continue
                state, cursor, lie = await self._store(state, cursor, head, shard, pending)
                ahead.release(lent)
                pending, lent = [], 0
                if lie is not None:
                    return state, cursor, lie

    async def _store(
        self,
        state: VerifiedTree,
        cursor: int,
        head: TreeHead,
        shard: Shard,
        entries: Sequence[V1Entry],
    ) -> tuple[VerifiedTree, int, IntegrityFailure | None]:
        """Prove and store what can be of ``entries`` (which follow ``state``)."""
        if not entries:
            return state, cursor, None
        good, lie = self._prove(state, head, shard, entries)
        done = good.size - state.size
        if done:
            cursor += done
            raws = [_raw(e) for e in entries[:done]]
            await self.out.commit(cursor, _data(head), good.range, raws)
            self.client.owed.served(self.owed)
        return good, cursor, lie

    def _withheld(
        self, error: TransientLogError | LogResponseError, state: VerifiedTree, head: TreeHead
    ) -> IntegrityFailure | None:
        """The entries of the signed ``head`` beyond ``state`` could not be had: a
        ``missing_entries`` failure once they are owed long enough (None before)."""
        if state.size >= head.size:
            return None  # nothing owed: the failure was not about entries
        client = self.client
        return withheld(
            client.owed,
            self.owed,
            client.missing_after,
            error,
            checkpoint=head.checkpoint,
            verified=state,
            tree_id=head.tree_id,
        )

    async def _advance(self, state: VerifiedTree, anchor: Anchor | None, head: TreeHead) -> None:
        """The head must extend the stored checkpoint (if larger) and the proven tree."""
        cp = head.checkpoint
        if anchor is not None:
            proof = None
            if anchor.size not in (0, cp.size) and cp.size > anchor.size:
                proof = await self.client.consistency_proof(anchor.size, cp.size, head.tree_id)
            check_extends(cp.origin, anchor, cp, proof)
        proof = None
        if state.size not in (0, cp.size) and cp.size > state.size:
            proof = await self.client.consistency_proof(state.size, cp.size, head.tree_id)
        advance_checkpoint(state, cp, proof)

    def _prove(
        self, state: VerifiedTree, head: TreeHead, shard: Shard, entries: Sequence[V1Entry]
    ) -> tuple[VerifiedTree, IntegrityFailure | None]:
        """The longest proven extension of ``state`` by ``entries``, and the lie that stopped
        it."""
        hashes = [leaf_hash(e.body) for e in entries]
        try:
            target = self._target(head, shard, entries, hashes)
            return verify_extension(state, target, hashes, state.size), None
        except CheckpointError as e:
            return state, checkpoint_failure(e)
        except IntegrityFailure as e:
            if e.type is not IntegrityType.ENTRY_NOT_IN_TREE:
                return state, e
            return self._narrow(state, shard, entries, hashes, e)

    def _narrow(
        self,
        state: VerifiedTree,
        shard: Shard,
        entries: Sequence[V1Entry],
        hashes: list[bytes],
        whole: IntegrityFailure,
    ) -> tuple[VerifiedTree, IntegrityFailure]:
        """A chunk that does not verify is searched for its first entry whose own inclusion
        proof fails: that entry is named, and the entries before it are kept. If none fails
        on its own, nothing of the chunk is kept and the chunk's failure stands."""
        for i, (entry, h) in enumerate(zip(entries, hashes, strict=True)):
            try:
                self._proof_target(shard, entry, h)
            except IntegrityFailure as bad:
                if i == 0:
                    return state, bad
                try:
                    before = self._proof_target(shard, entries[i - 1], hashes[i - 1])
                    return verify_extension(state, before, hashes[:i], state.size), bad
                except (IntegrityFailure, CheckpointError, LogResponseError):
                    return state, bad
            except (CheckpointError, LogResponseError):
                break
        return state, whole

    def _target(
        self, head: TreeHead, shard: Shard, entries: Sequence[V1Entry], hashes: list[bytes]
    ) -> SignedCheckpoint | VerifiedTree:
        last = entries[-1].log_index - shard.start
        if last + 1 == head.size:
            return head.checkpoint
        return self._proof_target(shard, entries[-1], hashes[-1])

    def _proof_target(self, shard: Shard, entry: V1Entry, h: bytes) -> VerifiedTree:
        """The prefix of the tree that ends with ``entry``, proven by its inclusion proof."""
        proof = entry.inclusion
        if proof is None:
            raise LogResponseError(f"entry {entry.log_index} was served without an inclusion proof")
        cp = self.client.verify_checkpoint(proof.checkpoint, shard.tree_id)
        return seed_from_inclusion(
            shard.tree_id, entry.log_index - shard.start, h, proof.hashes, cp
        )

    async def _batch(self, batch: _Batch) -> list[V1Entry]:
        return await self.client.batch(range(batch.first, batch.stop))


def _note_rename(name: str, state: VerifiedTree, head: TreeHead) -> bool:
    """Rekor v1 signs under its configured hostname, which a restarted pod changes: the tree
    (its ID, key and history) is the same, so this is neither a fork nor a lie. Said once, at
    the change; the checkpoints table keeps the notes under both names."""
    before, now = state.origin, head.checkpoint.origin
    if before != now:
        log.info(
            "log signs under a new name",
            extra={"fields": {"log": name, "tree_id": str(head.tree_id), "was": before,
                              "now": now}},
        )  # fmt: skip
    return before != now


def _head(info: LogInfo, shard: Shard) -> TreeHead:
    for th in (*info.inactive, info.active):
        if th.tree_id == shard.tree_id:
            return th
    raise ValueError(f"no tree head for tree {shard.tree_id}")


def _data(head: TreeHead) -> CheckpointData:
    return CheckpointData.from_signed(head.checkpoint)


def _raw(e: V1Entry) -> RawEntry:
    return RawEntry(e.log_index, e.body, e.integrated_time, e.attestation)


def _missing(
    e: MissingEntriesError, state: VerifiedTree, head: TreeHead, shard: Shard
) -> IntegrityFailure:
    """Entries of a signed tree that the log will not serve: withheld, as far as anyone can
    tell. The first one is named (tree-local, like every index in evidence)."""
    first = min(e.indexes)
    return IntegrityFailure(
        IntegrityType.MISSING_ENTRIES,
        f"the log did not serve {len(e.indexes)} entries of its signed tree {head.tree_id} "
        f"(size {head.size}), from global index {first}",
        {
            "tree_id": str(head.tree_id),
            "index": first - shard.start,
            "missing_global_indexes": sorted(e.indexes)[:100],
            "missing_count": len(e.indexes),
            "new": {
                "size": head.size,
                "root_hash": head.root_hash.hex(),
                "checkpoint": head.checkpoint.raw,
            },
            "verified_size": state.size,
        },
    )
