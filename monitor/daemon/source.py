"""What a catch-up pass reads from a log, whatever its API: ``LogSource``.

A log is a sequence of trees (Rekor v1 rotates to a new tree, its shards; a Rekor v2 log is
one tree), each under its own signed tree head; the global index of an entry is its tree's
start plus its index in the tree. A source gives the latest signed heads (``heads``), the
consistency proof between two sizes of a tree, the proven prefix of a tree where a pass
starts (``prefix``), and the entries of a range with what proves them: the pass reads the
range as ``Read`` requests, fetched ahead within the log's memory budget, and asks for the
proof of where a chunk ends (``end_proof``) unless a read brought it. Nothing a source returns
is trusted beyond the signatures of the heads: the pass proves the rest
(``monitor.tlog.proofs``). ``v1source`` and ``v2source`` implement it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.core.errors import CheckpointError
from monitor.core.findings import IntegrityType
from monitor.logclient.budget import ByteBudget
from monitor.logclient.owed import Owed
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import InclusionProof
from monitor.tlog.proofs import IntegrityFailure, VerifiedTree

__all__ = [
    "LogSource",
    "LogView",
    "Part",
    "RawEntry",
    "Read",
    "Target",
    "Tree",
    "checkpoint_failure",
]

# what the end of a chunk is proven against: the signed head itself, a proven prefix of it,
# or the lie met proving it (a value, so that it is judged in log order, not when fetched)
Target = SignedCheckpoint | VerifiedTree | IntegrityFailure


@dataclass(frozen=True)
class Tree:
    """One tree of a log under its latest signed head."""

    tree_id: int | None  # Rekor v1's tree ID; None for a log of one tree
    start: int  # global index of its first entry
    head: SignedCheckpoint
    final: bool  # a finished tree (Rekor v1's inactive shard): it never grows again

    @property
    def end(self) -> int:
        """Global index one past its last signed entry."""
        return self.start + self.head.size


@dataclass(frozen=True)
class LogView:
    """The log's trees under their latest verified heads, oldest first; the last one grows."""

    trees: tuple[Tree, ...]

    @property
    def size(self) -> int:
        return self.trees[-1].end

    def holding(self, index: int) -> Tree:
        """The tree that holds (or, past the end, will hold) the global ``index``."""
        for tree in self.trees:
            if index < tree.start:
                break
            if index < tree.end or not tree.final:
                return tree
        raise ValueError(f"global index {index} is before every tree")


@dataclass(frozen=True, slots=True)  # slots: thousands are read ahead at once
class RawEntry:
    """An entry as fetched: its (global) index, leaf bytes, and what Rekor v1 serves beside
    them (the integrated time, the attestation, an inclusion proof, unverified)."""

    index: int
    body: bytes
    integrated_time: int | None = None
    attestation: bytes | None = None
    inclusion: InclusionProof | None = None


@dataclass(frozen=True)
class Read:
    """One request of a pass: entries [first, stop) (global). ``ends_chunk``: the chunk is
    proven and stored after it; ``may_cut``: a chunk may be cut short after it (when it holds
    a quarter of the budget); a read of no entries that ends a chunk brings its proof."""

    first: int
    stop: int
    ends_chunk: bool
    may_cut: bool = True


@dataclass(frozen=True)
class Part:
    """What one ``Read`` brought: its entries, the proof of where they end if it came with
    them, and the bytes of the budget they hold."""

    entries: tuple[RawEntry, ...]
    proof: Target | None
    held: int


class LogSource(Protocol):
    """One log, as a catch-up pass reads it."""

    api: str  # "v1" or "v2", as the store registers the log
    url: str
    budget: ByteBudget  # the bytes its answers may hold at once
    owed: Owed  # since when data of a signed tree has not been served
    missing_after: float  # seconds owed before that is a lie (``withheld``)
    # entries carry proofs of their own: those read before a failure are proven and kept
    proofs_with_entries: bool

    async def heads(self) -> LogView:
        """The latest signed tree heads, verified (``CheckpointError`` if one is not)."""
        ...

    async def consistency_proof(self, tree: Tree, old_size: int) -> list[bytes]:
        """The log's proof that ``tree.head`` extends its tree of ``old_size`` entries
        (0 < old_size < its size), unverified."""
        ...

    def other_view(self, body: bytes, ours: SignedCheckpoint | None = None) -> Tree:
        """A checkpoint of the tree ``ours`` is of (None: of any tree of the log), as
        another vantage point holds it (a distributor, a witness, another monitor) or as the
        monitor stored it, verified with the log's own key, as a ``Tree`` for
        ``consistency_proof``; ``CheckpointError`` if the log did not sign it or it is of
        another tree."""
        ...

    async def prefix(self, tree: Tree, size: int) -> tuple[VerifiedTree, SignedCheckpoint]:
        """The proven prefix of ``size`` entries of ``tree`` (where a pass starts), and the
        checkpoint it was proven against; ``IntegrityFailure`` or ``CheckpointError`` if the
        log's data contradicts what it signed."""
        ...

    def reads(self, tree: Tree, first: int, end: int, chunk: int) -> Iterator[Read]:
        """The requests that read [first, end) of ``tree`` in chunks of about ``chunk``."""
        ...

    def prefetch_depth(self, chunk: int) -> int:
        """How many reads may be in flight ahead of the one being proven."""
        ...

    def worst(self, read: Read) -> int:
        """The most the answer to ``read`` may take (what it takes of the budget at first)."""
        ...

    async def read(self, tree: Tree, read: Read) -> Part:
        """The entries ``read`` asks for, in order, or the proof it asks for."""
        ...

    async def end_proof(self, tree: Tree, entries: Sequence[RawEntry]) -> Target:
        """What proves the tree that ends with the last of ``entries`` (a chunk cut short, or
        one whose reads brought no proof)."""
        ...

    async def narrow(
        self,
        tree: Tree,
        state: VerifiedTree,
        entries: Sequence[RawEntry],
        hashes: Sequence[bytes],
        whole: IntegrityFailure,
    ) -> tuple[VerifiedTree, IntegrityFailure]:
        """``entries`` (after ``state``; ``hashes`` their leaf hashes) failed as a chunk
        with ``whole`` (an entry not in the tree): the longest proven extension of ``state``
        by the entries before the first bad one, and the failure that names it (``whole`` if
        none can be named)."""
        ...


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
