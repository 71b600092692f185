"""monitor.sim.tree.MerkleStore against a naive RFC 6962 tree and monitor.tlog.merkle's verifiers.

The naive reference below is transcribed from RFC 6962 §2.1 (MTH), §2.1.1 (PATH) and §2.1.2
(PROOF/SUBPROOF) and recurses over leaf lists; it shares no code with the store. Its subtree
hashes are memoised by leaf range, so one ``Naive`` over N leaves answers for every prefix.
"""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sim.tree import MerkleStore
from monitor.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from monitor.tlog.tiles import (
    TILE_WIDTH,
    node_to_tile,
    partial_width,
    split_tile,
    tile_width,
)

PROPERTY = settings(max_examples=150, deadline=None)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Naive:
    """RFC 6962 §2.1 verbatim over a fixed list of leaf hashes."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return sha256(b"")
        if n == 1:
            return self.leaves[start]  # already SHA-256(0x00 || entry)
        if (start, end) not in self.memo:
            k = self.k(n)
            left, right = self.mth(start, start + k), self.mth(start + k, end)
            self.memo[start, end] = sha256(b"\x01" + left + right)
        return self.memo[start, end]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)


def make_leaves(n: int, tag: str = "leaf") -> list[bytes]:
    return [leaf_hash(f"{tag} {i}".encode()) for i in range(n)]


SMALL = 600
SMALL_LEAVES = make_leaves(SMALL)
SMALL_NAIVE = Naive(SMALL_LEAVES)
SMALL_STORE = MerkleStore(SMALL_LEAVES)

BIG = 5000
BIG_LEAVES = make_leaves(BIG, "big")
BIG_NAIVE = Naive(BIG_LEAVES)
BIG_STORE = MerkleStore(BIG_LEAVES)


def all_nodes(store: MerkleStore) -> list[bytes]:
    return [
        store.node(level, i)
        for level in range(store.size.bit_length())
        for i in range(store.size >> level)
    ]


# -- growth -----------------------------------------------------------------------------------


def test_empty_store() -> None:
    store = MerkleStore()
    assert store.size == 0
    assert store.root() == store.root(0) == EMPTY_ROOT
    assert store.nbytes == 0
    assert store.compact_range().size == 0
    with pytest.raises(ValueError, match="not in a tree of size 0"):
        store.inclusion_proof(0, 0)
    with pytest.raises(ValueError, match="beyond"):
        store.tile(0, 0, 1)


def test_node_hashing_matches_merkle_module() -> None:
    store = MerkleStore(SMALL_LEAVES[:2])
    assert store.root() == node_hash(SMALL_LEAVES[0], SMALL_LEAVES[1])
    assert store.node(1, 0) == store.root()


def test_append_returns_index_and_keeps_two_hashes_per_leaf() -> None:
    store = MerkleStore()
    for i, leaf in enumerate(SMALL_LEAVES):
        assert store.append(leaf) == i
    assert store.size == SMALL
    # levels[k] holds size >> k nodes: sum < 2 * size.
    assert store.nbytes == 32 * sum(SMALL >> k for k in range(SMALL.bit_length()))
    assert store.nbytes < 2 * 32 * SMALL
    assert all_nodes(store) == all_nodes(SMALL_STORE)


@PROPERTY
@given(cuts=st.lists(st.integers(min_value=0, max_value=SMALL), max_size=12))
def test_extend_in_any_chunks_equals_append(cuts: list[int]) -> None:
    store = MerkleStore()
    bounds = [0, *sorted(cuts), SMALL]
    for a, b in itertools.pairwise(bounds):
        store.extend(SMALL_LEAVES[a:b])
        assert store.size == b
        assert store.root() == SMALL_NAIVE.mth(0, b)
    assert all_nodes(store) == all_nodes(SMALL_STORE)


def test_extend_accepts_iterators_and_rejects_bad_hashes() -> None:
    store = MerkleStore(iter(SMALL_LEAVES[:10]))
    assert store.root() == SMALL_NAIVE.mth(0, 10)
    with pytest.raises(ValueError, match=r"got 31 \(leaf 11\)"):
        store.extend([SMALL_LEAVES[10], b"\x00" * 31])
    assert store.size == 10  # the bad chunk was rejected whole
    with pytest.raises(ValueError, match="got 33"):
        store.append(b"\x00" * 33)
    assert store.size == 10


def test_leaf_and_node_accessors() -> None:
    assert [SMALL_STORE.leaf(i) for i in range(SMALL)] == SMALL_LEAVES
    assert SMALL_STORE.node(9, 0) == SMALL_NAIVE.mth(0, 512)
    assert SMALL_STORE.node(3, 74) == SMALL_NAIVE.mth(592, 600)
    for level, index in [(0, SMALL), (3, 75), (10, 0), (-1, 0), (0, -1)]:
        with pytest.raises(ValueError, match="no complete subtree"):
            SMALL_STORE.node(level, index)


# -- roots and subtree hashes -----------------------------------------------------------------


def test_root_at_every_size() -> None:
    for size in range(SMALL + 1):
        assert SMALL_STORE.root(size) == SMALL_NAIVE.mth(0, size), size
    assert SMALL_STORE.root() == SMALL_NAIVE.mth(0, SMALL)


def test_root_while_growing() -> None:
    store = MerkleStore()
    compact = CompactRange()
    for size in range(1, SMALL + 1):
        store.append(SMALL_LEAVES[size - 1])
        compact.append(SMALL_LEAVES[size - 1])
        assert store.root() == SMALL_NAIVE.mth(0, size) == compact.root()


def test_compact_range_at_every_size() -> None:
    compact = CompactRange()
    for size in range(SMALL + 1):
        assert SMALL_STORE.compact_range(size).hashes == compact.hashes
        if size < SMALL:
            compact.append(SMALL_LEAVES[size])


def test_subtree_hash_every_range() -> None:
    """Aligned or not, every [start, end) of a 70-leaf tree matches the naive MTH."""
    store = MerkleStore(SMALL_LEAVES[:70])
    for start in range(71):
        for end in range(start, 71):
            assert store.subtree_hash(start, end) == SMALL_NAIVE.mth(start, end), (start, end)


@pytest.mark.parametrize(("start", "end"), [(-1, 1), (3, 2), (0, SMALL + 1), (SMALL, SMALL + 1)])
def test_subtree_hash_rejects(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="not within a tree"):
        SMALL_STORE.subtree_hash(start, end)


@pytest.mark.parametrize("size", [-1, SMALL + 1])
def test_root_rejects_sizes_beyond_the_tree(size: int) -> None:
    with pytest.raises(ValueError, match="tree size"):
        SMALL_STORE.root(size)
    with pytest.raises(ValueError, match="tree size"):
        SMALL_STORE.compact_range(size)


# -- inclusion proofs -------------------------------------------------------------------------

INCLUSION_ALL_UP_TO = 300
INCLUSION_SIZES = [
    *range(INCLUSION_ALL_UP_TO + 1, SMALL + 1, 37),
    383,
    384,
    385,
    511,
    512,
    513,
    SMALL - 1,
    SMALL,
]


def _check_inclusion(size: int) -> None:
    root = SMALL_STORE.root(size)
    for index in range(size):
        proof = SMALL_STORE.inclusion_proof(index, size)
        assert proof == SMALL_NAIVE.path(index, 0, size), (index, size)
        verify_inclusion(index, size, SMALL_LEAVES[index], proof, root)


def test_every_inclusion_proof_in_small_trees() -> None:
    """Every (index, size) with size <= 300; over 45,000 proofs."""
    for size in range(1, INCLUSION_ALL_UP_TO + 1):
        _check_inclusion(size)


@pytest.mark.parametrize("size", INCLUSION_SIZES)
def test_every_inclusion_proof_at_larger_sizes(size: int) -> None:
    _check_inclusion(size)


def test_inclusion_proof_defaults_to_current_size() -> None:
    assert SMALL_STORE.inclusion_proof(17) == SMALL_NAIVE.path(17, 0, SMALL)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0), (0, SMALL + 1)])
def test_inclusion_proof_rejects(index: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"not in a tree of size|tree size"):
        SMALL_STORE.inclusion_proof(index, size)


# -- consistency proofs -----------------------------------------------------------------------


def _check_consistency(size1: int, size2: int) -> None:
    proof = SMALL_STORE.consistency_proof(size1, size2)
    assert proof == SMALL_NAIVE.proof(size1, size2), (size1, size2)
    verify_consistency(size1, size2, proof, SMALL_STORE.root(size1), SMALL_STORE.root(size2))


def test_every_consistency_proof_in_small_trees() -> None:
    for size2 in range(1, 81):
        for size1 in range(1, size2 + 1):
            _check_consistency(size1, size2)


def test_consistency_proofs_around_powers_of_two() -> None:
    edges = sorted({s for p in range(10) for s in (2**p - 1, 2**p, 2**p + 1) if 0 < s <= SMALL})
    edges += [SMALL - 1, SMALL]
    for size2 in edges:
        for size1 in edges:
            if size1 <= size2:
                _check_consistency(size1, size2)


def test_random_consistency_proofs() -> None:
    rng = random.Random(6962)
    for _ in range(3000):
        size2 = rng.randint(1, SMALL)
        _check_consistency(rng.randint(1, size2), size2)


def test_consistency_proof_defaults_and_equal_sizes() -> None:
    assert SMALL_STORE.consistency_proof(100) == SMALL_NAIVE.proof(100, SMALL)
    assert SMALL_STORE.consistency_proof(SMALL) == []
    assert SMALL_STORE.consistency_proof(7, 7) == []


@pytest.mark.parametrize(("size1", "size2"), [(0, 5), (-1, 5), (6, 5), (1, SMALL + 1)])
def test_consistency_proof_rejects(size1: int, size2: int) -> None:
    with pytest.raises(ValueError, match=r"consistency proof|tree size"):
        SMALL_STORE.consistency_proof(size1, size2)


# -- properties over bigger trees -------------------------------------------------------------


@PROPERTY
@given(data=st.data(), size=st.integers(min_value=1, max_value=BIG))
def test_past_trees_up_to_5000(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    size1 = data.draw(st.integers(min_value=1, max_value=size), label="size1")
    root = BIG_STORE.root(size)
    assert root == BIG_NAIVE.mth(0, size)
    proof = BIG_STORE.inclusion_proof(index, size)
    assert proof == BIG_NAIVE.path(index, 0, size)
    verify_inclusion(index, size, BIG_LEAVES[index], proof, root)
    consistency = BIG_STORE.consistency_proof(size1, size)
    assert consistency == BIG_NAIVE.proof(size1, size)
    verify_consistency(size1, size, consistency, BIG_STORE.root(size1), root)


@PROPERTY
@given(data=st.data(), size=st.integers(min_value=1, max_value=BIG))
def test_aligned_subtree_hashes_up_to_5000(data: st.DataObject, size: int) -> None:
    level = data.draw(st.integers(min_value=0, max_value=size.bit_length() - 1))
    start = data.draw(st.integers(min_value=0, max_value=(size - 1) >> level)) << level
    end = data.draw(st.integers(min_value=start + 1, max_value=size))
    assert BIG_STORE.subtree_hash(start, end) == BIG_NAIVE.mth(start, end)


# -- tiles ------------------------------------------------------------------------------------


def test_level0_tiles_are_leaf_hashes() -> None:
    store = MerkleStore(SMALL_LEAVES)  # 600 = 2 full level-0 tiles + a partial of 88
    assert partial_width(0, SMALL) == 88
    assert store.tile(0, 0) == b"".join(SMALL_LEAVES[:256])
    assert split_tile(store.tile(0, 1, 256), 256) == SMALL_LEAVES[256:512]
    assert store.tile(0, 2, 88) == b"".join(SMALL_LEAVES[512:600])
    # A narrower partial tile is the partial tile of an older tree.
    assert store.tile(0, 2, 10) == b"".join(SMALL_LEAVES[512:522])
    assert store.tile(0, 0, 1) == SMALL_LEAVES[0]
    # Level 1 has 600 >> 8 = 2 hashes: the subtrees of leaves [0, 256) and [256, 512).
    assert store.tile(1, 0, 2) == SMALL_NAIVE.mth(0, 256) + SMALL_NAIVE.mth(256, 512)
    for level, index, width in [(0, 2, 89), (0, 2, 256), (0, 3, 1), (1, 0, 3), (1, 1, 1)]:
        with pytest.raises(ValueError, match="beyond a tree of size 600"):
            store.tile(level, index, width)
    for level, index, width in [(-1, 0, 1), (64, 0, 1), (0, -1, 1), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(ValueError, match=r"level|width|index"):
            store.tile(level, index, width)


SPEC_SIZE = 70_000  # tlog-tiles' example tree
SPEC_LEAVES = make_leaves(SPEC_SIZE, "spec")


@pytest.fixture(scope="module")
def spec_store() -> MerkleStore:
    return MerkleStore(SPEC_LEAVES)


def test_spec_example_tiles(spec_store: MerkleStore) -> None:
    """Size 70,000: 273 full level-0 tiles and a partial of 112, a full level-1 tile and a
    partial of 17, a level-2 partial of 1; exactly those exist and nothing wider."""
    store = spec_store
    assert store.tile(0, 272) == b"".join(SPEC_LEAVES[272 * 256 : 273 * 256])
    assert store.tile(0, 273, 112) == b"".join(SPEC_LEAVES[273 * 256 :])
    level1 = split_tile(store.tile(1, 0), TILE_WIDTH)
    assert level1 == [store.subtree_hash(i * 256, (i + 1) * 256) for i in range(256)]
    naive = Naive(SPEC_LEAVES)
    assert level1[0] == naive.mth(0, 256)
    assert level1[255] == naive.mth(255 * 256, 256 * 256)
    assert split_tile(store.tile(1, 1, 17), 17) == [
        store.subtree_hash(i * 256, (i + 1) * 256) for i in range(256, 273)
    ]
    # The one level-2 hash is the root of the first 65,536 leaves; check it independently.
    compact = CompactRange()
    compact.extend(SPEC_LEAVES[: 256 * 256])
    assert store.tile(2, 0, 1) == compact.root()
    compact.extend(SPEC_LEAVES[256 * 256 :])
    assert store.root() == compact.root()
    for level in range(3):
        width = partial_width(level, SPEC_SIZE)
        index = (SPEC_SIZE >> (8 * level)) // 256
        assert len(store.tile(level, index, width)) == 32 * width
        assert tile_width(level, index, SPEC_SIZE) == width
        with pytest.raises(ValueError, match="beyond"):
            store.tile(level, index, width + 1)
    with pytest.raises(ValueError, match="beyond"):
        store.tile(3, 0, 1)


def _hash_up(hashes: list[bytes], rows: int) -> list[bytes]:
    for _ in range(rows):
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
    return hashes


def test_every_node_is_found_through_its_tile(spec_store: MerkleStore) -> None:
    """node_to_tile + tile + rehashing the rows inside the tile gives back every stored node."""
    store = spec_store
    rng = random.Random(1)
    for level in range(SPEC_SIZE.bit_length()):
        count = SPEC_SIZE >> level
        for index in {0, count - 1, *(rng.randrange(count) for _ in range(20))}:
            tile_level, tile_index, position = node_to_tile(level, index)
            width = tile_width(tile_level, tile_index, SPEC_SIZE)
            row = _hash_up(split_tile(store.tile(tile_level, tile_index, width), width), level % 8)
            assert row[position] == store.node(level, index), (level, index)
