"""A deliberately naive RFC 6962 Merkle tree, used as an independent oracle in the tests.

Everything here is transcribed directly from RFC 6962 §2.1 and shares no code with
``monitor.tlog.merkle``:

- §2.1:   MTH(D[n]), the Merkle Tree Hash, recursive with k the largest power of two < n;
- §2.1.1: PATH(m, D[n]), the audit path (inclusion proof) for leaf m;
- §2.1.2: PROOF(m, D[n]) and SUBPROOF(m, D[n], b), the consistency proof between the tree of
  the first m leaves and the tree of the first n leaves.

The tree is built over *leaf hashes* (``SHA-256(0x00 || entry)``), because that is what the
verifiers under test take. Subtree hashes are memoised by their ``(start, end)`` leaf range, so
one ``ReferenceTree`` answers questions about every prefix ``D[0:n]`` of its leaves cheaply: the
hash of a subtree depends only on the leaves it covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def ref_leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


REF_EMPTY_ROOT = hashlib.sha256(b"").digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962 §2.1: the largest power of two strictly smaller than ``n`` (n > 1)."""
    if n < 2:
        raise ValueError(f"no power of two is strictly below {n} in a split of n > 1 leaves")
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """An append-only list of leaf hashes with RFC 6962 MTH, PATH and PROOF over any prefix."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._leaves: list[bytes] = list(leaf_hashes)
        self._memo: dict[tuple[int, int], bytes] = {}

    @classmethod
    def from_seed(cls, seed: int, size: int) -> ReferenceTree:
        """A tree whose leaf i is the leaf hash of ``f"{seed}:{i}"``."""
        return cls(seeded_leaf(seed, i) for i in range(size))

    def __len__(self) -> int:
        return len(self._leaves)

    @property
    def leaves(self) -> tuple[bytes, ...]:
        return tuple(self._leaves)

    def leaf(self, index: int) -> bytes:
        return self._leaves[index]

    def append(self, leaf_hash: bytes) -> None:
        # Existing memo entries stay valid: they cover only leaves that do not change.
        self._leaves.append(leaf_hash)

    # -- RFC 6962 §2.1: MTH ---------------------------------------------------------------

    def _mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        n = end - start
        if n == 0:
            return REF_EMPTY_ROOT
        if n == 1:
            # The leaves are already leaf hashes: MTH({d(0)}) = SHA-256(0x00 || d(0)).
            return self._leaves[start]
        key = (start, end)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        k = largest_power_of_two_below(n)
        value = ref_node_hash(self._mth(start, start + k), self._mth(start + k, end))
        self._memo[key] = value
        return value

    def root(self, n: int | None = None) -> bytes:
        """MTH(D[n]): the root of the tree of the first ``n`` leaves (default: all of them)."""
        n = self._size(n)
        return self._mth(0, n)

    # -- RFC 6962 §2.1.1: PATH ------------------------------------------------------------

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]), with m relative to ``start``."""
        n = end - start
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m < k:
            return [*self._path(m, start, start + k), self._mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self._mth(start, start + k)]

    def inclusion_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """PATH(m, D[n]): the audit path for leaf ``m`` in the tree of the first ``n`` leaves."""
        n = self._size(n)
        if not 0 <= m < n:
            raise ValueError(f"leaf {m} is not in a tree of {n} leaves")
        return self._path(m, 0, n)

    # -- RFC 6962 §2.1.2: PROOF / SUBPROOF ------------------------------------------------

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[start:end], b), with m counted from ``start``."""
        n = end - start
        if m == n:
            return [] if b else [self._mth(start, end)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self._mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._mth(start, start + k)]

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n."""
        n = self._size(n)
        if not 0 < m <= n:
            raise ValueError(f"no consistency proof from {m} leaves to {n} leaves")
        return self._subproof(m, 0, n, True)

    # -- helpers -------------------------------------------------------------------------

    def perfect_subtree_roots(self, n: int | None = None) -> list[bytes]:
        """The roots of the perfect subtrees that make up D[0:n], largest (leftmost) first.

        This is what a compact range of size ``n`` must hold: one subtree per set bit of ``n``.
        """
        n = self._size(n)
        roots: list[bytes] = []
        start = 0
        for bit in reversed(range(n.bit_length())):
            width = 1 << bit
            if n & width:
                roots.append(self._mth(start, start + width))
                start += width
        return roots

    def _size(self, n: int | None) -> int:
        if n is None:
            return len(self._leaves)
        if not 0 <= n <= len(self._leaves):
            raise ValueError(f"prefix size {n} is outside [0, {len(self._leaves)}]")
        return n


def seeded_leaf(seed: int, index: int) -> bytes:
    """The deterministic leaf hash number ``index`` of the tree with ``seed``."""
    return ref_leaf_hash(f"{seed}:{index}".encode())
