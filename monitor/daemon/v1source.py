"""A Rekor v1 log as a ``LogSource``: its trees (shards), batches of entries with their proofs.

Rekor v1 is sharded: the log is a sequence of trees, each with its own tree ID, checkpoints and
local indexes; global index = the tree's start + local index. LogInfo gives every tree's
signed head (the inactive ones final); the log serves consistency proofs. Entries are read in
batches of 10, each entry with an inclusion proof and the signed checkpoint it proves into: a
chunk's end is proven by the inclusion proof of its last entry (the head itself when the chunk
reaches it), and an entry that does not hash into the tree is found through its own proof.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from monitor.core.errors import CheckpointError, LogResponseError
from monitor.daemon.prefetch import chunks
from monitor.daemon.source import (
    LogView,
    Part,
    RawEntry,
    Read,
    Target,
    Tree,
    checkpoint_failure,
)
from monitor.logclient.v1 import BATCH_SIZE, LogInfo, RekorV1Client, V1Entry
from monitor.tlog.checkpoint import SignedCheckpoint, v1_tree_id
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.proofs import (
    IntegrityFailure,
    VerifiedTree,
    seed_from_inclusion,
    verify_extension,
)

__all__ = ["RekorV1Source"]

PREFETCH = 4  # chunks of batches in flight ahead of the one being proven and stored


class RekorV1Source:
    api = "v1"
    proofs_with_entries = True

    def __init__(self, client: RekorV1Client) -> None:
        self.client = client
        self.url = client.log.base_url
        self.budget = client.budget
        self.owed = client.owed
        self.missing_after = client.missing_after

    async def heads(self) -> LogView:
        return _view(await self.client.log_info())

    async def consistency_proof(self, tree: Tree, old_size: int) -> list[bytes]:
        return await self.client.consistency_proof(old_size, tree.head.size, _id(tree))

    def other_view(self, body: bytes, ours: SignedCheckpoint | None = None) -> Tree:
        raw = body.decode("utf-8", "replace")
        origin = raw.split("\n", 1)[0] if ours is None else ours.origin
        tree_id = v1_tree_id(origin)
        if tree_id is None:
            raise CheckpointError("checkpoint-origin", f"no tree ID in {origin!r}", raw)
        return Tree(tree_id, 0, self.client.verify_checkpoint(raw, tree_id), final=False)

    async def prefix(self, tree: Tree, size: int) -> tuple[VerifiedTree, SignedCheckpoint]:
        """The tree ending just before entry ``size``, proven by the inclusion proof of the
        entry before it (read for this)."""
        if size == 0:
            return VerifiedTree.empty(tree.head, tree.tree_id), tree.head
        (entry,) = await self.client.batch([tree.start + size - 1])
        proof = entry.inclusion
        if proof is None:
            raise LogResponseError(f"entry {entry.log_index} was served without an inclusion proof")
        cp = self.client.verify_checkpoint(proof.checkpoint, _id(tree))
        state = seed_from_inclusion(_id(tree), size - 1, leaf_hash(entry.body), proof.hashes, cp)
        return state, cp

    def reads(self, tree: Tree, first: int, end: int, chunk: int) -> Iterator[Read]:
        for a, b in chunks(first, end, chunk):
            for lo in range(a, b, BATCH_SIZE):
                hi = min(b, lo + BATCH_SIZE)
                yield Read(lo, hi, ends_chunk=hi == b)

    def prefetch_depth(self, chunk: int) -> int:
        return PREFETCH * -(-chunk // BATCH_SIZE)

    def worst(self, read: Read) -> int:
        return self.client.batch_cap(read.stop - read.first)

    async def read(self, tree: Tree, read: Read) -> Part:
        got = await self.client.batch(range(read.first, read.stop))
        return Part(tuple(_raw(e) for e in got), None, sum(e.held for e in got))

    async def end_proof(self, tree: Tree, entries: Sequence[RawEntry]) -> Target:
        last = entries[-1]
        if last.index + 1 == tree.end:
            return tree.head
        try:
            return self._proven_by(tree, last, leaf_hash(last.body))
        except CheckpointError as e:
            return checkpoint_failure(e)
        except IntegrityFailure as e:
            return e

    async def narrow(
        self,
        tree: Tree,
        state: VerifiedTree,
        entries: Sequence[RawEntry],
        hashes: Sequence[bytes],
        whole: IntegrityFailure,
    ) -> tuple[VerifiedTree, IntegrityFailure]:
        """The first entry whose own inclusion proof fails is named, and the entries before it
        are kept. If none fails on its own, nothing of the chunk is kept and ``whole``
        stands."""
        for i, (entry, h) in enumerate(zip(entries, hashes, strict=True)):
            try:
                self._proven_by(tree, entry, h)
            except IntegrityFailure as bad:
                if i == 0:
                    return state, bad
                try:
                    before = self._proven_by(tree, entries[i - 1], hashes[i - 1])
                    return verify_extension(state, before, hashes[:i], state.size), bad
                except (IntegrityFailure, CheckpointError, LogResponseError):
                    return state, bad
            except (CheckpointError, LogResponseError):
                break
        return state, whole

    def _proven_by(self, tree: Tree, entry: RawEntry, h: bytes) -> VerifiedTree:
        """The prefix of the tree that ends with ``entry``, proven by its inclusion proof."""
        proof = entry.inclusion
        if proof is None:
            raise LogResponseError(f"entry {entry.index} was served without an inclusion proof")
        cp = self.client.verify_checkpoint(proof.checkpoint, _id(tree))
        return seed_from_inclusion(_id(tree), entry.index - tree.start, h, proof.hashes, cp)


def _view(info: LogInfo) -> LogView:
    trees = []
    start = 0
    for th in (*info.inactive, info.active):
        trees.append(Tree(th.tree_id, start, th.checkpoint, final=th is not info.active))
        start += th.size
    return LogView(tuple(trees))


def _id(tree: Tree) -> int:
    assert tree.tree_id is not None  # every Rekor v1 tree has one
    return tree.tree_id


def _raw(e: V1Entry) -> RawEntry:
    return RawEntry(e.log_index, e.body, e.integrated_time, e.attestation, e.inclusion)
