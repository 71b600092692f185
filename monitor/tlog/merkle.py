"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof verification and compact ranges.

Proof verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency). Both
verifiers also return the *frontier* they walk past: the roots of the perfect subtrees that
cover the leaves to the left of the proven position. That is what lets a monitor seed a
``CompactRange`` from one verified proof and then prove every later entry by appending leaf
hashes, with no per-entry proofs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.errors import ProofError


@dataclass(frozen=True)
class InclusionProof:
    """An inclusion proof as a log serves it (Rekor v1's ``verification.inclusionProof``):
    unverified until checked against its checkpoint (whose signature is not checked here
    either)."""

    index: int  # tree-local
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _root_from_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> tuple[bytes, list[bytes]]:
    """Walk an inclusion proof; return the root and the left siblings (right to left)."""
    if index < 0:
        raise ProofError("inclusion-proof", f"leaf index {index} is negative")
    if index >= size:
        raise ProofError("inclusion-proof", f"leaf index {index} is not below tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError("inclusion-proof", f"leaf hash is {len(leaf)} bytes, expected {HASH_SIZE}")
    fn, sn = index, size - 1
    r = leaf
    lefts: list[bytes] = []
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion-proof", f"proof has {len(proof)} hashes: too many")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            lefts.append(p)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion-proof", f"proof has {len(proof)} hashes: too few")
    return r, lefts


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof implies for ``leaf`` at ``index`` in a tree of ``size``."""
    return _root_from_inclusion(index, size, leaf, proof)[0]


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves with ``root``.

    Raises ``ProofError`` (check ``inclusion-proof``) on any mismatch.
    """
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise ProofError(
            "inclusion-proof",
            f"proof for index {index} in tree size {size} gives root {computed.hex()}, "
            f"expected {root.hex()}",
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1).

    Raises ``ProofError`` (check ``consistency-proof``) on any mismatch.
    """
    _walk_consistency(size1, size2, proof, root1, root2)


def _trivially_consistent(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> bool:
    """Reject impossible size pairs; return True when the sizes are equal and roots agree."""
    check = "consistency-proof"
    if size1 < 0 or size2 < 0:
        raise ProofError(check, f"tree sizes must not be negative: {size1} -> {size2}")
    if size1 == 0:
        raise ProofError(check, "a consistency proof from an empty tree proves nothing")
    if size1 > size2:
        raise ProofError(check, f"tree shrank from {size1} to {size2}")
    if size1 == size2:
        if proof:
            raise ProofError(check, "proof must be empty for equal tree sizes")
        if root1 != root2:
            raise ProofError(
                check, f"two different roots for tree size {size1}: {root1.hex()} != {root2.hex()}"
            )
        return True
    if not proof:
        raise ProofError(check, f"empty proof for sizes {size1} -> {size2}")
    return False


def _walk_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> list[bytes]:
    """Verify a consistency proof; return the compact range of the first tree, left to right.

    The range is empty when the sizes are equal (the proof is then empty too).
    """
    check = "consistency-proof"
    if _trivially_consistent(size1, size2, proof, root1, root2):
        return []

    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    frontier = [path[0]]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(check, f"proof has {len(proof)} hashes: too many")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            frontier.append(c)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(check, f"proof has {len(proof)} hashes: too few")
    if fr != root1:
        raise ProofError(
            check, f"proof gives old root {fr.hex()} for size {size1}, expected {root1.hex()}"
        )
    if sr != root2:
        raise ProofError(
            check, f"proof gives new root {sr.hex()} for size {size2}, expected {root2.hex()}"
        )
    frontier.reverse()
    return frontier


@dataclass(frozen=True)
class CompactRangeState:
    """A serialisable snapshot of a compact range: tree size and its perfect-subtree roots."""

    size: int
    hashes: tuple[bytes, ...]


class CompactRange:
    """The right edge of a Merkle tree [0, size): enough to append leaves and compute roots.

    ``hashes`` are the roots of the perfect subtrees that make up the tree, largest (leftmost)
    first: one per set bit of ``size``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        hs = list(hashes)
        if size < 0:
            raise ValueError("size must not be negative")
        if len(hs) != size.bit_count():
            raise ProofError(
                "compact-range",
                f"a tree of size {size} needs {size.bit_count()} subtree hashes, got {len(hs)}",
            )
        if any(len(h) != HASH_SIZE for h in hs):
            raise ProofError("compact-range", "subtree hashes must be 32 bytes")
        self._size = size
        self._hashes = hs

    @classmethod
    def from_consistency_proof(
        cls, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
    ) -> CompactRange:
        """Verify a consistency proof and return the compact range of the older tree.

        Needs ``size1 < size2``: a proof between equal sizes is empty and carries no range.
        """
        if size1 >= size2:
            raise ProofError(
                "consistency-proof",
                f"cannot seed a compact range from sizes {size1} -> {size2}; need growth",
            )
        return cls(size1, _walk_consistency(size1, size2, proof, root1, root2))

    @classmethod
    def from_inclusion_proof(
        cls, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
    ) -> CompactRange:
        """Verify an inclusion proof and return the compact range of [0, index + 1)."""
        computed, lefts = _root_from_inclusion(index, size, leaf, proof)
        if computed != root:
            raise ProofError(
                "inclusion-proof",
                f"proof for index {index} in tree size {size} gives root {computed.hex()}, "
                f"expected {root.hex()}",
            )
        lefts.reverse()
        rng = cls(index, lefts)
        rng.append(leaf)
        return rng

    @classmethod
    def from_state(cls, state: CompactRangeState) -> CompactRange:
        return cls(state.size, state.hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def state(self) -> CompactRangeState:
        return CompactRangeState(self._size, tuple(self._hashes))

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (already hashed with ``leaf_hash``)."""
        hs = self._hashes
        hs.append(leaf)
        s = self._size
        while s & 1:
            right = hs.pop()
            hs[-1] = node_hash(hs[-1], right)
            s >>= 1
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The Merkle tree hash of [0, size)."""
        hs = self._hashes
        if not hs:
            return EMPTY_ROOT
        r = hs[-1]
        for h in reversed(hs[:-1]):
            r = node_hash(h, r)
        return r

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
