"""A Rekor v2 log as a ``LogSource``: one tree, entry bundles and hash tiles.

The log is one tree under one signed checkpoint. It has no proof endpoint: consistency proofs
and the proven prefix of a tree (``seed_v2``, O(log n) hash tiles) are read from its tiles.
Entries come in bundles of 256 without proofs: a chunk is read as its bundles, then the proof
of its end (the prefix of the checkpoint's tree that it ends), fetched ahead like the bundles.
An entry that does not hash into the tree is found by binary search over proven prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from monitor.daemon.prefetch import chunks
from monitor.daemon.source import LogView, Part, RawEntry, Read, Target, Tree
from monitor.logclient.v2 import RekorV2Client
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree, verify_extension
from monitor.tlog.tileproofs import seed_v2, v2_consistency_proof
from monitor.tlog.tiles import TILE_WIDTH, tile_width, tiles_for_range

__all__ = ["RekorV2Source"]

PREFETCH = 4  # chunks of bundles in flight ahead of the one being proven and stored
END_CAP = 128 << 10  # the tiles that prove a chunk's end: a few of 8 KiB each
PROOF_HELD = 4096  # a compact range, or the evidence of a lie


class RekorV2Source:
    api = "v2"
    proofs_with_entries = False

    def __init__(self, client: RekorV2Client) -> None:
        self.client = client
        self.url = client.log.base_url
        self.budget = client.budget
        self.owed = client.owed
        self.missing_after = client.missing_after

    async def heads(self) -> LogView:
        cp = await self.client.checkpoint()
        return LogView((Tree(None, 0, cp, final=False),))

    async def consistency_proof(self, tree: Tree, old_size: int) -> list[bytes]:
        return await v2_consistency_proof(self.client, old_size, tree.head)

    def other_view(self, body: bytes, ours: SignedCheckpoint | None = None) -> Tree:
        return Tree(None, 0, self.client.open_note(body), final=False)

    async def prefix(self, tree: Tree, size: int) -> tuple[VerifiedTree, SignedCheckpoint]:
        return await seed_v2(self.client, tree.head, size), tree.head

    def reads(self, tree: Tree, first: int, end: int, chunk: int) -> Iterator[Read]:
        """Each chunk (whole bundles, but at its ends) as its bundles, then its end's proof."""
        for a, b in chunks(first, end, chunk, aligned=True):
            for span in tiles_for_range(a, b, tree.head.size):
                yield Read(span.start, span.end, ends_chunk=False, may_cut=span.end != b)
            yield Read(b, b, ends_chunk=True)

    def prefetch_depth(self, chunk: int) -> int:
        return PREFETCH * (-(-chunk // TILE_WIDTH) + 1)

    def worst(self, read: Read) -> int:
        return self.client.bundle_cap() if read.first < read.stop else END_CAP

    async def read(self, tree: Tree, read: Read) -> Part:
        if read.first == read.stop:
            return Part((), await self._prefix(tree, read.stop), PROOF_HELD)
        index = read.first // TILE_WIDTH
        bodies = await self.client.entry_bundle(index, tile_width(0, index, tree.head.size))
        base = index * TILE_WIDTH
        got = bodies[read.first - base : read.stop - base]
        entries = tuple(RawEntry(read.first + i, b) for i, b in enumerate(got))
        return Part(entries, None, sum(len(b) + 40 for b in got))

    async def end_proof(self, tree: Tree, entries: Sequence[RawEntry]) -> Target:
        return await self._prefix(tree, entries[-1].index + 1)

    async def narrow(
        self,
        tree: Tree,
        state: VerifiedTree,
        entries: Sequence[RawEntry],
        hashes: Sequence[bytes],
        whole: IntegrityFailure,
    ) -> tuple[VerifiedTree, IntegrityFailure]:
        """Binary search over proven prefixes for the first entry that breaks the extension;
        the entries before it are kept."""
        if len(hashes) == 1:
            return state, whole  # a single entry: nothing to narrow
        cp = tree.head
        first = state.size
        # [first, lo) verifies (lo = first: trivially), [first, hi) does not
        lo, hi, good = first, first + len(hashes), state
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

    async def _prefix(self, tree: Tree, size: int) -> Target:
        """The proven prefix of ``size`` entries of the tree, or the lie met proving it."""
        try:
            return await seed_v2(self.client, tree.head, size)
        except IntegrityFailure as e:
            return e
