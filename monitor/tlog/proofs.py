"""The verification core: what is proven about a log, and the only ways to move it forward.

A ``VerifiedTree`` is a proven fact: the leaves [0, size) of a log tree have Merkle root
``root_hash``, and that tree is a prefix of the signed checkpoint kept in ``checkpoint_raw``.
It carries the compact range of [0, size) (one hash per set bit of ``size``), which is all it
takes to prove later entries. Indexes and sizes are those of one tree: tree-local (shard-local)
for Rekor v1, where ``tree_id`` names the tree, and plain log indexes for a Rekor v2 shard.

Per chunk, the catch-up pass (``monitor.daemon.catchup``) does::

    advance_checkpoint(state, new, proof)          # the new tree extends the verified one
    state = verify_extension(state, new, leaf_hashes, state.size)   # the entries are its leaves

``advance_checkpoint`` checks the log's consistency proof (Rekor v1: ``/api/v1/log/proof``;
Rekor v2 has no proof endpoint, so ``tileproofs.v2_consistency_proof`` builds the RFC 6962 proof
from hash tiles; either way it is untrusted data that ``verify_consistency`` judges). It catches a
fork before anything is fetched. ``verify_extension`` appends the leaf hash of every entry in
[state.size, new.size) to a copy of the stored compact range and requires the signed root: one
comparison proves every entry, with no per-entry proofs. (It also proves consistency by
itself; the separate proof is the early warning and the evidence.)

Start points without history: ``VerifiedTree.empty`` (index 0 of a tree), ``seed_from_inclusion``
(Rekor v1: the inclusion proof that Rekor ships with the entry just before the start point) and
``seed_v2`` (Rekor v2: the compact range read from hash tiles, proven against the checkpoint;
in ``tileproofs``).

What may be committed, and when
-------------------------------
One bad leaf anywhere in a range changes the computed root, and the root does not say which
leaf is bad. So no entry of a range may be committed (stored, matched, alerted on, or counted
towards the cursor) until the whole range has verified. ``BatchVerifier`` takes the range in
ordered chunks as they arrive and keeps only O(log n) hashes, but the *entries* of those chunks
are still unverified until ``finish()`` returns. Three ways to live with that (the catch-up pass
takes the second):

1. Keep the range in memory. For tailing that is the growth since the last poll: small.
2. Verify in bounded steps against a proven *intermediate* target. Any prefix [0, m) of a
   signed tree can be proven cheaply, and ``verify_extension`` / ``BatchVerifier`` accept such
   a ``VerifiedTree`` as the target: for Rekor v2, ``await seed_v2(client, checkpoint, m)``
   (O(log n) tiles); for Rekor v1, ``seed_from_inclusion`` with the inclusion proof Rekor
   attaches to entry m - 1. A long catch-up then holds one step at a time, and every step
   commits only verified entries. This is the memory-bounded path; prefer it.
3. Stage each chunk as "unverified" (a spill file or rows the readers ignore), feed its leaf
   hashes to a ``BatchVerifier``, and promote the staged rows in the same transaction as the
   new cursor once ``finish()`` succeeds; drop them if it raises. Memory stays flat without
   extra requests, at the price of writing every entry twice and of a "verified" flag that
   every reader must respect. Never promote on a failure, "to catch up".

Failures: ``IntegrityFailure`` (a ``VerificationError``) when the log contradicts itself or a
signed checkpoint, with ``type`` (an ``IntegrityType``) and ``evidence``, a JSON-ready dict
(checkpoints as raw signed notes, hashes as hex, tree IDs as decimal strings). ``ValueError``
when the caller breaks the contract (chunks out of order, a checkpoint of another tree, a
leaf hash that is not 32 bytes): those are bugs, not lies, and must not raise an alert about
the log. ``TransientLogError`` from tile fetching passes through untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.errors import ProofError, VerificationError
from monitor.core.findings import IntegrityType
from monitor.tlog.checkpoint import Checkpoint, SignedCheckpoint, v1_tree_id
from monitor.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    CompactRangeState,
    verify_consistency,
)
from monitor.tlog.note import SignedNote

__all__ = [
    "BatchVerifier",
    "IntegrityFailure",
    "VerifiedTree",
    "advance_checkpoint",
    "seed_from_inclusion",
    "verify_extension",
]

# what an integrity failure shows, JSON-ready: stored as its finding's evidence
FailureJson = dict[str, object]


class IntegrityFailure(VerificationError):
    """The log lied: ``type`` says how, ``evidence`` (JSON-serialisable) shows it.

    ``check`` (from ``VerificationError``) is the ``IntegrityType`` value.
    """

    def __init__(self, integrity_type: IntegrityType, message: str, evidence: FailureJson) -> None:
        super().__init__(str(integrity_type), message)
        self.type = integrity_type
        self.evidence = evidence


@dataclass(frozen=True)
class VerifiedTree:
    """Proven: leaves [0, size) of the tree have root ``root_hash``, and they are a prefix of
    the tree that the signed note ``checkpoint_raw`` commits to (whose size may be larger, for
    a seeded start point). ``range`` is the compact range of [0, size)."""

    size: int
    root_hash: bytes
    checkpoint_raw: str
    range: CompactRangeState
    tree_id: int | None = None  # the Rekor v1 tree; None for Rekor v2

    def __post_init__(self) -> None:
        if self.range.size != self.size:
            raise ValueError(f"compact range has size {self.range.size}, tree has {self.size}")
        try:
            root = CompactRange.from_state(self.range).root()
        except ProofError as e:
            raise ValueError(f"compact range is malformed: {e}") from None
        if root != self.root_hash:
            raise ValueError(
                f"compact range of size {self.size} has root {root.hex()}, "
                f"not {self.root_hash.hex()}"
            )

    @classmethod
    def empty(cls, checkpoint: SignedCheckpoint, tree_id: int | None = None) -> VerifiedTree:
        """The empty prefix of the tree ``checkpoint`` signs: a start at index 0 of the tree
        (also of a new Rekor v1 tree after a shard rotation)."""
        if tree_id is not None and v1_tree_id(checkpoint.origin) != tree_id:
            raise ValueError(f"checkpoint origin {checkpoint.origin!r} is not tree {tree_id}")
        return cls(0, EMPTY_ROOT, checkpoint.raw, CompactRangeState(0, ()), tree_id)

    @property
    def origin(self) -> str:
        """The origin line of ``checkpoint_raw``: which log (and v1 tree) this is about."""
        return Checkpoint.from_text(SignedNote.from_text(self.checkpoint_raw).text).origin

    def compact_range(self) -> CompactRange:
        """A fresh, mutable copy of the compact range of [0, size)."""
        return CompactRange.from_state(self.range)


# -- evidence ---------------------------------------------------------------------------------


def hexes(hashes: Iterable[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _tree_evidence(tree: VerifiedTree) -> FailureJson:
    return {
        "size": tree.size,
        "root_hash": tree.root_hash.hex(),
        "checkpoint": tree.checkpoint_raw,
        "tree_id": None if tree.tree_id is None else str(tree.tree_id),
    }


def checkpoint_evidence(checkpoint: SignedCheckpoint) -> FailureJson:
    return {
        "size": checkpoint.size,
        "root_hash": checkpoint.root_hash.hex(),
        "checkpoint": checkpoint.raw,
    }


@dataclass(frozen=True)
class _Target:
    """What a range is verified against: a signed checkpoint, or a proven prefix of one."""

    size: int
    root_hash: bytes
    checkpoint_raw: str
    origin: str
    proven_prefix: bool  # a VerifiedTree (seeded or earlier step), not a checkpoint
    evidence: FailureJson

    @classmethod
    def of(cls, target: SignedCheckpoint | VerifiedTree) -> _Target:
        if isinstance(target, VerifiedTree):
            return cls(
                target.size,
                target.root_hash,
                target.checkpoint_raw,
                target.origin,
                True,
                _tree_evidence(target),
            )
        return cls(
            target.size,
            target.root_hash,
            target.raw,
            target.origin,
            False,
            checkpoint_evidence(target),
        )


def _same_tree(state: VerifiedTree, origin: str, tree_id: int | None = None) -> str:
    """Refuse to compare different trees (e.g. a new Rekor v1 shard): a caller bug, not a lie.

    A Rekor v1 tree is named by its tree ID: the hostname in its origin may change (a
    restarted pod signs under its new name) while the tree stays the same."""
    ours = state.origin
    if state.tree_id is not None:
        if v1_tree_id(origin) != state.tree_id:
            raise ValueError(
                f"checkpoint is for {origin!r}, the verified tree is {ours!r} (tree "
                f"{state.tree_id}): a new tree (shard rotation) starts from its own seed"
            )
    elif origin != ours:
        raise ValueError(
            f"checkpoint is for {origin!r}, the verified tree is {ours!r}: "
            "a new tree (shard rotation) starts from its own seed"
        )
    if tree_id is not None and tree_id != state.tree_id:
        raise ValueError(f"target is tree {tree_id}, the verified tree is {state.tree_id}")
    return origin


@dataclass(frozen=True)
class Anchor:
    """An earlier tree of the log that a new checkpoint must extend: the verified tree, or a
    signed checkpoint stored before (``what`` says which, for messages)."""

    size: int
    root_hash: bytes
    evidence: FailureJson
    what: str = "verified"

    @classmethod
    def of(cls, tree: VerifiedTree) -> Anchor:
        return cls(tree.size, tree.root_hash, _tree_evidence(tree))


def _not_rewritten(old: Anchor, origin: str, size: int, root: bytes, new: FailureJson) -> None:
    """A smaller tree, or another root for the verified size, is a lie whatever else holds."""
    if size < old.size:
        raise IntegrityFailure(
            IntegrityType.TREE_SHRUNK,
            f"{origin}: the signed tree shrank from {old.size} to {size} entries",
            {"old": old.evidence, "new": new},
        )
    if size == old.size and root != old.root_hash:
        raise IntegrityFailure(
            IntegrityType.TREE_CHANGED,
            f"{origin}: two roots for tree size {size}: {old.what} {old.root_hash.hex()}, "
            f"now signed {root.hex()}",
            {"old": old.evidence, "new": new},
        )


# -- checkpoints ------------------------------------------------------------------------------


def advance_checkpoint(
    state: VerifiedTree, new: SignedCheckpoint, proof: Sequence[bytes] | None
) -> None:
    """Check that the signed tree ``new`` extends the verified ``state``.

    ``proof`` is the log's consistency proof from ``state.size`` to ``new.size``; it may be
    ``None`` only when there is nothing to prove (equal sizes, or an empty verified tree),
    and is ignored then. Raises ``IntegrityFailure``: ``TREE_SHRUNK`` (smaller tree),
    ``TREE_CHANGED`` (another root for the same size), ``CONSISTENCY_FAILURE`` (the proof
    does not verify). ``ValueError`` if ``new`` is another tree or a needed proof is missing.
    Nothing is returned: the entries of the new range still have to be proven
    (``verify_extension``) before the verified tree can move.
    """
    check_extends(_same_tree(state, new.origin), Anchor.of(state), new, proof)


def check_extends(
    origin: str, old: Anchor, new: SignedCheckpoint, proof: Sequence[bytes] | None
) -> None:
    """The signed tree ``new`` extends the tree ``old`` of the same log (see
    ``advance_checkpoint``); raises ``IntegrityFailure`` or, for a missing proof, ``ValueError``."""
    _not_rewritten(old, origin, new.size, new.root_hash, checkpoint_evidence(new))
    if old.size in (0, new.size):
        return  # the same tree, or the empty one: every tree extends it
    if proof is None:
        raise ValueError(f"a consistency proof from size {old.size} to {new.size} is needed")
    try:
        verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except ProofError as e:
        raise IntegrityFailure(
            IntegrityType.CONSISTENCY_FAILURE,
            f"{origin}: the signed tree of size {new.size} is not an extension of the "
            f"{old.what} tree of size {old.size}: {e.message}",
            {"old": old.evidence, "new": checkpoint_evidence(new), "proof": hexes(proof)},
        ) from None


# -- entries ----------------------------------------------------------------------------------


class BatchVerifier:
    """Proves the entries [state.size, target.size) arrive as the target tree's leaves.

    Feed the leaf hashes in log order with ``add`` (chunks of any size; fetch them in
    parallel, add them in order), then ``finish()``: only its result may be committed, with
    every entry of the range (see the module docstring for bounding memory). Holds O(log n)
    hashes whatever the range. ``target`` is a signed checkpoint, or a proven prefix of one
    (a ``VerifiedTree`` from ``seed_v2`` / ``seed_from_inclusion``) for a bounded step.
    """

    def __init__(self, state: VerifiedTree, target: SignedCheckpoint | VerifiedTree) -> None:
        t = _Target.of(target)
        tree_id = target.tree_id if isinstance(target, VerifiedTree) else None
        origin = _same_tree(state, t.origin, tree_id)
        if t.proven_prefix and t.size < state.size:
            raise ValueError(f"target size {t.size} is below the verified size {state.size}")
        _not_rewritten(Anchor.of(state), origin, t.size, t.root_hash, t.evidence)
        self._state = state
        self._target = t
        self._origin = origin
        self._range = state.compact_range()
        self._digest = hashlib.sha256()  # of every leaf hash added, to name the data checked
        self._last_leaf = b""
        self._done = False

    @property
    def next_index(self) -> int:
        """The index the next ``add`` must start at."""
        return self._range.size

    @property
    def remaining(self) -> int:
        """Entries still to add before ``finish()``."""
        return self._target.size - self._range.size

    def add(self, first_index: int, leaf_hashes: Sequence[bytes]) -> None:
        """Append the leaf hashes of entries [first_index, first_index + len(leaf_hashes)).

        ``ValueError`` unless ``first_index == next_index`` (chunks go in log order, without
        gaps) and every hash is 32 bytes. ``IntegrityFailure(ENTRY_NOT_IN_TREE)`` if the
        chunk goes past the target size: those entries are not in the signed tree.
        """
        self._check_open()
        if first_index != self._range.size:
            raise ValueError(f"chunk starts at {first_index}, expected {self._range.size}")
        end = first_index + len(leaf_hashes)
        if end > self._target.size:
            self._done = True
            raise IntegrityFailure(
                IntegrityType.ENTRY_NOT_IN_TREE,
                f"{self._origin}: {len(leaf_hashes)} entries from index {first_index} run to "
                f"{end}, past the signed tree of size {self._target.size}: entries "
                f"[{self._target.size}, {end}) are not in it",
                self._evidence(chunk_first_index=first_index, chunk_end_index=end),
            )
        for i, h in enumerate(leaf_hashes):
            if len(h) != HASH_SIZE:
                self._done = True
                raise ValueError(
                    f"leaf hash of entry {first_index + i} is {len(h)} bytes, not {HASH_SIZE}"
                )
            self._range.append(h)
            self._digest.update(h)
        if leaf_hashes:
            self._last_leaf = leaf_hashes[-1]

    def finish(self) -> VerifiedTree:
        """The new verified tree, once the range is complete and hashes to the target root.

        ``IntegrityFailure``: ``MISSING_ENTRIES`` if entries are still missing,
        ``ENTRY_NOT_IN_TREE`` if the root differs (evidence names the range and both roots).
        """
        self._check_open()
        self._done = True
        state, t, rng = self._state, self._target, self._range
        if rng.size < t.size:
            raise IntegrityFailure(
                IntegrityType.MISSING_ENTRIES,
                f"{self._origin}: entries [{rng.size}, {t.size}) are missing: got "
                f"{rng.size - state.size} of the {t.size - state.size} entries "
                f"[{state.size}, {t.size})",
                self._evidence(missing_first_index=rng.size, missing_end_index=t.size),
            )
        computed = rng.root()
        if computed != t.root_hash:
            raise IntegrityFailure(
                IntegrityType.ENTRY_NOT_IN_TREE,
                f"{self._origin}: entries [{state.size}, {t.size}) do not hash into the signed "
                f"tree: the verified range of size {state.size} extended with their "
                f"{t.size - state.size} leaf hashes has root {computed.hex()}, the tree of size "
                f"{t.size} has root {t.root_hash.hex()}",
                self._evidence(computed_root=computed.hex(), **self._single_entry()),
            )
        return VerifiedTree(t.size, t.root_hash, t.checkpoint_raw, rng.state(), state.tree_id)

    def _check_open(self) -> None:
        if self._done:
            raise ValueError("this BatchVerifier has finished or failed; start a new one")

    def _evidence(self, **extra: object) -> FailureJson:
        state, t = self._state, self._target
        ev: FailureJson = {
            "old": _tree_evidence(state),
            "new": t.evidence,
            "first_index": state.size,
            "end_index": t.size,
            "expected_root": t.root_hash.hex(),
        }
        ev.update(extra)
        ev["leaf_count"] = self._range.size - state.size  # leaves added so far
        ev["leaf_hashes_sha256"] = self._digest.hexdigest()  # of those, concatenated
        return ev

    def _single_entry(self) -> FailureJson:
        """A range of one entry that fails names it: it is the offending one."""
        if self._range.size - self._state.size != 1:
            return {}
        return {"index": self._state.size, "leaf_hash": self._last_leaf.hex()}


def verify_extension(
    state: VerifiedTree,
    new: SignedCheckpoint | VerifiedTree,
    leaf_hashes: Sequence[bytes],
    first_index: int,
) -> VerifiedTree:
    """Prove that ``leaf_hashes`` are exactly the leaves [state.size, new.size) of ``new``.

    ``first_index`` must be ``state.size`` (``ValueError`` otherwise). ``IntegrityFailure``:
    ``ENTRY_NOT_IN_TREE`` (root mismatch, or more leaves than the tree has),
    ``MISSING_ENTRIES`` (fewer), ``TREE_SHRUNK`` / ``TREE_CHANGED`` as ``advance_checkpoint``.
    """
    verifier = BatchVerifier(state, new)
    verifier.add(first_index, leaf_hashes)
    return verifier.finish()


# -- seeding: Rekor v1 ------------------------------------------------------------------------


def seed_from_inclusion(
    tree_id: int,
    index: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    checkpoint: SignedCheckpoint,
) -> VerifiedTree:
    """Start a Rekor v1 tree at ``index + 1`` from the inclusion proof of entry ``index``.

    ``index`` is tree-local, ``leaf_hash`` the leaf hash of the entry as fetched, ``proof``
    and ``checkpoint`` (signature already verified) the ``verification.inclusionProof`` that
    Rekor serves with it. The proof's left siblings are the compact range of [0, index + 1),
    so the result has size ``index + 1`` and that range's root, and keeps the proof's
    checkpoint as evidence. ``IntegrityFailure(ENTRY_NOT_IN_TREE)`` if the proof fails;
    ``VerificationError("checkpoint-origin")`` if the checkpoint is of another tree.
    """
    if index < 0:
        raise ValueError(f"entry index {index} is negative")
    if len(leaf_hash) != HASH_SIZE:
        raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    if v1_tree_id(checkpoint.origin) != tree_id:
        raise VerificationError(
            "checkpoint-origin",
            f"inclusion proof checkpoint origin {checkpoint.origin!r} is not tree {tree_id}",
        )
    try:
        rng = CompactRange.from_inclusion_proof(
            index, checkpoint.size, leaf_hash, proof, checkpoint.root_hash
        )
    except ProofError as e:
        raise IntegrityFailure(
            IntegrityType.ENTRY_NOT_IN_TREE,
            f"{checkpoint.origin}: entry {index} (leaf hash {leaf_hash.hex()}) is not in the "
            f"signed tree of size {checkpoint.size}: {e.message}",
            {
                "new": checkpoint_evidence(checkpoint),
                "tree_id": str(tree_id),
                "index": index,
                "leaf_hash": leaf_hash.hex(),
                "proof": hexes(proof),
            },
        ) from None
    return VerifiedTree(index + 1, rng.root(), checkpoint.raw, rng.state(), tree_id)
