"""Where a pass resumes: the stored cursor and compact range as a ``VerifiedTree``.

The state of a log (its tailing cursor) or of one backfill of it is read the same way. The
stored checkpoint may be larger than the proven tree (a pass that stopped inside its range, or
a seed): a new checkpoint must extend that one too, so it comes back as an ``Anchor``.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.storage.ports import CatchUpStore
from monitor.tlog.checkpoint import Checkpoint, v1_tree_id
from monitor.tlog.merkle import CompactRange, CompactRangeState
from monitor.tlog.note import SignedNote
from monitor.tlog.proofs import Anchor, VerifiedTree

__all__ = ["Resume", "load_resume"]


@dataclass(frozen=True)
class Resume:
    cursor: int  # global index of the next entry
    tree: VerifiedTree  # the proven prefix of the current tree (tree-local size)
    anchor: Anchor | None  # the stored checkpoint, when larger than ``tree``

    @property
    def tree_start(self) -> int:
        """Global index of the current tree's first entry (0 but for a rotated v1 log)."""
        return self.cursor - self.tree.size


async def load_resume(
    store: CatchUpStore, log: str, backfill: tuple[int, int] | None = None
) -> Resume | None:
    """The stored state of ``log`` (or of its backfill ``(start, end)``); None if nothing was
    verified yet. ``ValueError`` if the stored state contradicts itself (a bug, or an edited
    database: never something to repair silently)."""
    if backfill is None:
        state = await store.log_state(log)
        if state is None:
            return None
        raw, cursor, rng = state.verified_checkpoint, state.cursor, state.compact_range
    else:
        bf = await store.backfill_state(log, *backfill)
        if bf is None:
            return None
        raw, cursor, rng = bf.checkpoint, bf.cursor, bf.compact_range
    if raw is None:
        return None
    return _resume(log, raw, cursor, rng)


def _resume(log: str, raw: str, cursor: int, rng: CompactRangeState) -> Resume:
    cp = Checkpoint.from_text(SignedNote.from_text(raw).text)
    tree_id = v1_tree_id(cp.origin)
    if cursor < rng.size:
        raise ValueError(f"{log}: cursor {cursor} is below the compact range's size {rng.size}")
    if tree_id is None and cursor != rng.size:
        raise ValueError(f"{log}: cursor {cursor} is not the compact range's size {rng.size}")
    if cp.size < rng.size:
        raise ValueError(f"{log}: stored checkpoint of size {cp.size} is below the proven tree")
    root = CompactRange.from_state(rng).root()
    tree = VerifiedTree(rng.size, root, raw, rng, tree_id)
    anchor = None
    if cp.size > rng.size:
        evidence = {"size": cp.size, "root_hash": cp.root_hash.hex(), "checkpoint": raw}
        anchor = Anchor(cp.size, cp.root_hash, evidence, "signed")
    return Resume(cursor, tree, anchor)
