"""One verified catch-up pass over one Rekor v2 log, into the store.

The pass reads the log's verified state from the store (or seeds one), checks that the log's
current signed checkpoint extends it, then walks [verified size, checkpoint size) in chunks.
Each chunk is proven before anything of it is kept: its end ``m`` is proven a prefix of the
checkpoint (``seed_v2``: O(log n) hash tiles), and the chunk's leaf hashes must extend the
verified compact range to exactly that prefix's root (``verify_extension``). Only then is the
chunk parsed, matched and stored, with the new compact range and cursor, in ONE batch.

Bundles and chunk-end proofs are fetched ahead, in order, within the log's memory budget
(``prefetch.Window``); a chunk is cut short at a bundle (its end proven on the spot) when it
holds a quarter of the budget.

When the log lies (``IntegrityFailure``), the pass stores one critical ``integrity_failure``
finding with the evidence and stops there: the cursor never moves past what was proven. For an
entry that does not hash into the tree, the chunk is narrowed down to the offending entry
(binary search over proven prefixes); the entries before it are proven and are kept. Tiles or
bundles of a signed checkpoint that cannot be had are an outage until the log's
``missing_after``, then a ``missing_entries`` failure (``withheld``); a checkpoint of more
entries than a log can hold is one at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from monitor.core.errors import CheckpointError, LogResponseError, TransientLogError
from monitor.core.findings import IntegrityType
from monitor.daemon.commit import (
    Committer,
    PassContext,
    PassResult,
    RawEntry,
    Start,
    check_arguments,
    drive,
    first_cursor,
)
from monitor.daemon.prefetch import Window, chunks
from monitor.daemon.state import Resume, begin_pass
from monitor.daemon.withheld import owed_key, withheld
from monitor.logclient.v2 import RekorV2Client
from monitor.storage.logs_state import CheckpointData
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.proofs import (
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    check_extends,
    seed_v2,
    v2_consistency_proof,
    verify_extension,
)
from monitor.tlog.tiles import TILE_WIDTH, tiles_for_range

__all__ = ["catch_up_v2", "checkpoint_failure"]

PREFETCH = 4  # chunks of bundles in flight ahead of the one being proven and stored
END_CAP = 128 << 10  # the tiles that prove a chunk's end: a few of 8 KiB each


async def catch_up_v2(
    client: RekorV2Client,
    ctx: PassContext,
    *,
    start: Start = "resume",
    chunk: int = 1024,
) -> PassResult:
    """Catch the log ``ctx.name`` up to its current checkpoint, proving every entry stored.

    ``start`` applies only when the store holds no verified state for the log (the stored
    state always wins: the cursor never moves back): ``"tip"`` and ``"resume"`` seed at the
    checkpoint's size (nothing is processed until the log grows), an ``int`` seeds at that
    index. A seed is stored at once, with no entries. For a backfill (``ctx.backfill`` is
    ``(first, end)``) the pass seeds at ``first`` and stops at ``end``. ``TransientLogError``
    and ``StorageError`` pass through; whatever was stored before them stays valid.
    """
    check_arguments(start, chunk)
    run = _Pass(client, ctx)
    return await drive(run.out, run.run(start, chunk))


def checkpoint_failure(e: CheckpointError) -> IntegrityFailure:
    """A checkpoint that fails verification is a lie of the log (or of someone in front of it);
    one signed for more entries than a log can hold (``checkpoint-size``) promises entries the
    log cannot serve."""
    if e.check == "checkpoint-size":
        return IntegrityFailure(
            IntegrityType.MISSING_ENTRIES,
            f"the log signed a checkpoint it cannot serve ({e.check}): {e.message}",
            {"check": e.check, "checkpoint": e.raw},
        )
    return IntegrityFailure(
        IntegrityType.BAD_CHECKPOINT_SIGNATURE,
        f"the log served a checkpoint that does not verify ({e.check}): {e.message}",
        {"check": e.check, "checkpoint": e.raw},
    )


@dataclass(frozen=True)
class _Bundle:
    """Entries [first, stop) of entry bundle ``index`` (``width`` entries in the tree), part of
    the chunk that ends at ``chunk_end``."""

    index: int
    width: int
    first: int
    stop: int
    chunk_end: int


@dataclass(frozen=True)
class _End:
    """The proof that the tree of ``stop`` entries is a prefix of the checkpoint's."""

    stop: int


_Target = VerifiedTree | IntegrityFailure
_Piece = _Bundle | _End
_Got = list[bytes] | _Target


def _pieces(first: int, end: int, chunk: int, tree_size: int) -> Iterator[_Piece]:
    for a, b in chunks(first, end, chunk, aligned=True):
        for span in tiles_for_range(a, b, tree_size):
            yield _Bundle(span.index, span.width, span.start, span.end, b)
        yield _End(b)


def _held(got: _Got) -> int:
    if isinstance(got, list):
        return sum(len(b) + 40 for b in got)
    return 4096  # a compact range, or the evidence of a lie


class _Pass:
    def __init__(self, client: RekorV2Client, ctx: PassContext) -> None:
        self.client = client
        self.ctx = ctx
        self.out = Committer(ctx)
        self.owed = owed_key(ctx)

    async def run(self, start: Start, chunk: int) -> PassResult:
        ctx = self.ctx
        resume, at = await begin_pass(ctx, "v2", self.client.log.base_url)
        try:
            cp = await self.client.checkpoint()
        except CheckpointError as e:
            failure = checkpoint_failure(e)
            await self.out.fail(failure, None if resume is None else resume.tree, at)
            return self.out.result(at, at, failure)
        self.out.signed(cp.size)
        end = cp.size
        if ctx.backfill is not None:
            start, end = ctx.backfill
            if end > cp.size:
                raise ValueError(f"backfill end {end} is beyond the log's size {cp.size}")
        if resume is None:
            seeded = await self._seed(cp, start)
            if isinstance(seeded, IntegrityFailure):
                return self.out.result(at, cp.size, seeded)
            state = seeded
        else:
            state = resume.tree
        try:
            if resume is not None:  # first: a shrink or change is a lie whatever tiles say
                await self._extends_stored(resume, cp)
            proof = await v2_consistency_proof(self.client, state.size, cp)
            advance_checkpoint(state, cp, proof)
        except IntegrityFailure as e:
            await self.out.fail(e, state, state.size)
            return self.out.result(state.size, cp.size, e)
        except (TransientLogError, LogResponseError) as e:
            return await self._withheld(e, state, cp)
        self.out.verified(cp.size)
        self.out.plan(end - state.size)
        return await self._chunks(state, cp, end, chunk)

    async def _chunks(
        self, state: VerifiedTree, cp: SignedCheckpoint, end: int, chunk: int
    ) -> PassResult:
        """Prove and store [state.size, end) in tile-aligned chunks, fetched (entry bundles
        and the proof of each chunk's end) ahead and processed in order."""
        client = self.client
        ahead: Window[_Piece, _Got] = Window(
            lambda piece: self._fetch(piece, cp),
            _pieces(state.size, end, chunk, cp.size),
            budget=client.budget,
            worst=lambda piece: client.bundle_cap() if isinstance(piece, _Bundle) else END_CAP,
            held=_held,
            depth=PREFETCH * (-(-chunk // TILE_WIDTH) + 1),
        )
        cut_at = client.budget.limit // 4
        pending: list[bytes] = []
        lent = 0
        try:
            async with ahead:
                async for taken in ahead:
                    piece, got = taken.piece, taken.result
                    lent += taken.held
                    if isinstance(got, list):
                        pending += got
                        assert isinstance(piece, _Bundle)
                        if lent < cut_at or piece.stop == piece.chunk_end:
                            continue
                        got = await _prefix(client, cp, piece.stop)  # cut here: prove it
                    state, lie = await self._store(state, cp, pending, got)
                    ahead.release(lent)
                    pending, lent = [], 0
                    if lie is not None:
                        await self.out.fail(lie, state, state.size)
                        return self.out.result(state.size, cp.size, lie)
        except (TransientLogError, LogResponseError) as e:
            return await self._withheld(e, state, cp)
        if state.size >= cp.size:
            client.owed.served(self.owed)  # everything signed is stored
        return self.out.result(state.size, cp.size, None)

    async def _fetch(self, piece: _Piece, cp: SignedCheckpoint) -> _Got:
        if isinstance(piece, _End):
            return await _prefix(self.client, cp, piece.stop)
        bodies = await self.client.entry_bundle(piece.index, piece.width)
        base = piece.index * TILE_WIDTH
        return bodies[piece.first - base : piece.stop - base]

    async def _store(
        self, state: VerifiedTree, cp: SignedCheckpoint, bodies: list[bytes], target: _Got
    ) -> tuple[VerifiedTree, IntegrityFailure | None]:
        """Prove ``bodies`` (the entries after ``state``) against ``target`` and store what
        is proven; the state reached and the lie that stopped it."""
        if not bodies:
            return state, None
        assert not isinstance(target, list)
        first = state.size
        good, lie = await self._prove(state, cp, [leaf_hash(b) for b in bodies], target)
        if good.size > first:
            done = bodies[: good.size - first]
            proven = [RawEntry(first + i, b) for i, b in enumerate(done)]
            await self.out.commit(good.size, _cp(cp), good.range, proven)
            self.client.owed.served(self.owed)
        return good, lie

    async def _withheld(
        self, error: TransientLogError | LogResponseError, state: VerifiedTree, cp: SignedCheckpoint
    ) -> PassResult:
        """Tiles or bundles of the signed ``cp`` could not be had: an outage (``error`` is
        raised again) until they are owed for the log's ``missing_after``, then the lie."""
        if state.size >= cp.size:
            raise error  # nothing owed: the failure was not about entries
        client = self.client
        failure = withheld(
            client.owed,
            self.owed,
            client.missing_after,
            error,
            checkpoint=cp,
            verified=state,
        )
        if failure is None:
            raise error
        await self.out.fail(failure, state, state.size)
        return self.out.result(state.size, cp.size, failure)

    async def _seed(self, cp: SignedCheckpoint, start: Start) -> VerifiedTree | IntegrityFailure:
        """Store the start point; a lie found on the way is stored and returned instead."""
        at = cp.size if start in ("tip", "resume") else int(start)
        if at > cp.size:
            raise ValueError(f"start index {at} is beyond the log's size {cp.size}")
        try:
            state = await seed_v2(self.client, cp, at)
        except IntegrityFailure as e:
            await self.out.fail(e, None, first_cursor(self.ctx))
            return e
        await self.out.seed(state.size, _cp(cp), state, new_tree=False)
        return state

    async def _extends_stored(self, resume: Resume, cp: SignedCheckpoint) -> None:
        """The stored checkpoint may be larger than the verified tree (a pass stopped inside
        its range): the new one must not shrink it, change it, or fork from it either."""
        old = resume.anchor
        if old is None:
            return  # the verified tree is the stored checkpoint: advance_checkpoint judges it
        proof = None
        if cp.size > old.size:
            proof = await v2_consistency_proof(self.client, old.size, cp)
        check_extends(cp.origin, old, cp, proof)

    async def _prove(
        self, state: VerifiedTree, cp: SignedCheckpoint, hashes: list[bytes], target: _Target
    ) -> tuple[VerifiedTree, IntegrityFailure | None]:
        """The longest proven extension of ``state`` by ``hashes``, and the lie that stopped
        it. A chunk whose entries do not hash into the tree is narrowed down to its first bad
        entry, so that the failure names it and the entries before it are kept."""
        first = state.size
        end = first + len(hashes)
        try:
            if isinstance(target, IntegrityFailure):
                raise target
            return verify_extension(state, target, hashes, first), None
        except IntegrityFailure as e:
            if len(hashes) == 1 or e.type is not IntegrityType.ENTRY_NOT_IN_TREE:
                return state, e  # a single entry, or not a bad leaf: nothing to narrow
            whole = e
        # [first, lo) verifies (lo = first: trivially), [first, hi) does not
        lo, hi, good = first, end, state
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                target = await seed_v2(self.client, cp, mid)
                good_mid = verify_extension(good, target, hashes[lo - first : mid - first], lo)
            except IntegrityFailure:
                hi = mid
            else:
                lo, good = mid, good_mid
        try:
            target = await seed_v2(self.client, cp, hi)
            verify_extension(good, target, hashes[lo - first : hi - first], lo)
        except IntegrityFailure as e:
            return good, e  # the single offending entry, named in the evidence
        return state, whole  # the narrowing did not reproduce the lie: keep nothing of it


async def _prefix(client: RekorV2Client, cp: SignedCheckpoint, size: int) -> _Target:
    """The proven prefix of size ``size`` of the checkpoint's tree, or the lie met proving it
    (a value, so that it is judged in log order, not when fetched)."""
    try:
        return await seed_v2(client, cp, size)
    except IntegrityFailure as e:
        return e


def _cp(cp: SignedCheckpoint) -> CheckpointData:
    return CheckpointData.from_signed(cp)
