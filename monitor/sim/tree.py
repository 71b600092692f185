"""An append-only RFC 6962 Merkle tree that answers questions about every past size.

``MerkleStore`` keeps every *perfect* subtree: ``levels[k]`` holds, 32 bytes each, the hashes
of the subtrees of ``2**k`` leaves that start at a multiple of ``2**k`` and are complete, so
``levels[0]`` is the leaf hashes and ``levels[k]`` has ``size >> k`` nodes. One ``bytearray``
per level, grown as leaves arrive: memory is about twice the leaf hashes (64 bytes per leaf).

These nodes never change once written, and they are the same in every past tree that covers
them. Any tree hash the log ever had, ``MTH(D[start:end])``, is a fold of O(log n) of them as
long as ``start`` is aligned the way RFC 6962 splits trees (which holds for roots, proofs and
tiles). So ``root``, ``inclusion_proof`` and ``consistency_proof`` work for any past size in
O(log n) hashes, with no walk over leaves.

Not thread-safe: callers serialise appends against reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from itertools import islice

from monitor.tlog.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, node_hash
from monitor.tlog.tiles import MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH

_NODE_PREFIX = b"\x01"  # as monitor.tlog.merkle.node_hash; tests check the two agree
_EXTEND_CHUNK = 1 << 16


def _split(n: int) -> int:
    """RFC 6962's k: the largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleStore:
    """Append-only RFC 6962 tree over leaf hashes, with roots and proofs for any past size."""

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = []
        self._size = 0
        self.extend(leaf_hashes)

    def __repr__(self) -> str:
        return f"MerkleStore(size={self._size})"

    # -- growth ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes of hashes stored (about 64 per leaf)."""
        return sum(len(level) for level in self._levels)

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash (``leaf_hash`` of the entry, tlog/merkle.py); return its index."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf_hash)}")
        levels = self._levels
        if not levels:
            levels.append(bytearray())
        levels[0] += leaf_hash
        index = self._size
        self._size = size = index + 1
        # Each trailing zero bit of the new size completes one perfect subtree, a level up.
        level = 0
        while not size & 1:
            if level + 1 == len(levels):
                levels.append(bytearray())
            levels[level + 1] += hashlib.sha256(_NODE_PREFIX + levels[level][-64:]).digest()
            size >>= 1
            level += 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes; faster than ``append`` one by one, same result.

        The leaves are taken in chunks; a bad hash in a chunk rejects that whole chunk (the
        chunks before it stay appended).
        """
        it = iter(leaf_hashes)
        while chunk := list(islice(it, _EXTEND_CHUNK)):
            for i, h in enumerate(chunk):
                if len(h) != HASH_SIZE:
                    raise ValueError(
                        f"a leaf hash is {HASH_SIZE} bytes, got {len(h)} (leaf {self._size + i})"
                    )
            self._extend_checked(chunk)

    def _extend_checked(self, chunk: list[bytes]) -> None:
        levels = self._levels
        if not levels:
            levels.append(bytearray())
        levels[0] += b"".join(chunk)
        self._size += len(chunk)
        level = 0
        while (want := self._size >> (level + 1)) > 0:
            if level + 1 == len(levels):
                levels.append(bytearray())
            lower, upper = levels[level], levels[level + 1]
            have = len(upper) // HASH_SIZE
            if have == want:
                break  # nothing new here, so nothing new above either
            sha256 = hashlib.sha256
            upper += b"".join(
                sha256(_NODE_PREFIX + lower[64 * i : 64 * i + 64]).digest()
                for i in range(have, want)
            )
            level += 1

    # -- stored nodes ----------------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """The stored perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``."""
        if level < 0 or not 0 <= index < self._size >> level:
            raise ValueError(
                f"no complete subtree ({level}, {index}) in a tree of size {self._size}"
            )
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self.node(0, index)

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """C2SP hash tile ``level``/``index`` of ``width`` hashes (``TILE_WIDTH`` = full).

        The hashes of tree level ``8 * level``, nodes ``index * 256 .. index * 256 + width - 1``.
        Raises ``ValueError`` if any of them is not complete yet (the tile is beyond the tree).
        """
        if not 0 <= level <= MAX_TILE_LEVEL:
            raise ValueError(f"tile level must be in 0..{MAX_TILE_LEVEL}, got {level}")
        if not 1 <= width <= TILE_WIDTH:
            raise ValueError(f"tile width must be in 1..{TILE_WIDTH}, got {width}")
        if index < 0:
            raise ValueError(f"tile index must not be negative, got {index}")
        tree_level = TILE_HEIGHT * level
        available = self._size >> tree_level
        first = index * TILE_WIDTH
        if first + width > available:
            raise ValueError(
                f"tile {level}/{index} of width {width} is beyond a tree of size {self._size} "
                f"(tile level {level} has {available} hashes)"
            )
        offset = first * HASH_SIZE
        return bytes(self._levels[tree_level][offset : offset + width * HASH_SIZE])

    # -- tree hashes -----------------------------------------------------------------------

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is not in 0..{self._size}")
        return size

    def _mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for start < end, split as RFC 6962 §2.1 does."""
        n = end - start
        if not n & (n - 1) and not start & (n - 1):  # a perfect, aligned subtree: stored
            level = n.bit_length() - 1
            offset = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][offset : offset + HASH_SIZE])
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for ``0 <= start <= end <= size`` (the empty range: EMPTY_ROOT).

        O(log n) when ``start`` is a multiple of the largest power of two below
        ``end - start``, as for every subtree of RFC 6962 proofs and tiles. Other ranges are
        correct but cost up to O((end - start) / 2**z) hashes, z = trailing zeros of start.
        """
        if not 0 <= start <= end <= self._size:
            raise ValueError(f"range [{start}, {end}) is not within a tree of size {self._size}")
        if start == end:
            return EMPTY_ROOT
        return self._mth(start, end)

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree of the first ``size`` leaves (default: all of them)."""
        size = self._check_size(size)
        return self._mth(0, size) if size else EMPTY_ROOT

    def compact_range(self, size: int | None = None) -> CompactRange:
        """The compact range of the first ``size`` leaves: one perfect subtree per set bit."""
        size = self._check_size(size)
        hashes: list[bytes] = []
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                hashes.append(self.node(level, start >> level))
                start += 1 << level
        return CompactRange(size, hashes)

    # -- proofs ----------------------------------------------------------------------------

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[size]), leaf side first; for any past ``size``."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
        path: list[bytes] = []
        lo, hi = 0, size
        # Walk down from the root. Every left sibling, and every right sibling once the walk
        # has turned left, is a stored perfect subtree; only the first right sibling can be a
        # ragged right edge, folded from at most log n stored subtrees.
        while hi - lo > 1:
            mid = lo + _split(hi - lo)
            if index < mid:
                path.append(self._mth(mid, hi))
                hi = mid
            else:
                path.append(self._mth(lo, mid))
                lo = mid
        path.reverse()
        return path

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true).

        Needs ``0 < size1 <= size2``; equal sizes give the empty proof.
        """
        size2 = self._check_size(size2)
        if not 0 < size1 <= size2:
            raise ValueError(f"no consistency proof from tree size {size1} to {size2}")
        proof: list[bytes] = []
        lo, hi = 0, size2
        whole = True  # SUBPROOF's b: D[lo:hi] has been the whole old tree so far
        while size1 != hi:  # invariant: lo < size1 <= hi
            mid = lo + _split(hi - lo)
            if size1 <= mid:
                proof.append(self._mth(mid, hi))
                hi = mid
            else:
                proof.append(self._mth(lo, mid))
                lo = mid
                whole = False
        if not whole:
            proof.append(self._mth(lo, hi))
        proof.reverse()
        return proof
