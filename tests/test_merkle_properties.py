"""Property tests: monitor.tlog.merkle against the naive RFC 6962 reference in merkle_reference.

Leaves are derived from a seed (leaf i = leaf_hash(f"{seed}:{i}")) so that hypothesis only has
to choose a few integers even for trees of thousands of leaves; every leaf is distinct.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.errors import ProofError
from monitor.tlog.merkle import (
    EMPTY_ROOT,
    CompactRange,
    CompactRangeState,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.merkle_reference import REF_EMPTY_ROOT, ReferenceTree, ref_leaf_hash, seeded_leaf

MAX_SIZE = 3000
PROPERTY = settings(max_examples=200, deadline=None)

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def up_to(low: int, high: int) -> st.SearchStrategy[int]:
    """An integer in [low, high]: half the time biased to the bounds (hypothesis' default),
    half the time uniform, so that interior positions in big trees are well exercised."""
    uniform = st.integers(min_value=0, max_value=2**32).map(lambda r: low + r % (high - low + 1))
    return st.integers(min_value=low, max_value=high) | uniform


sizes = up_to(1, MAX_SIZE)
bits = st.integers(min_value=0, max_value=8 * 32 - 1)


def flip_bit(value: bytes, bit: int) -> bytes:
    """``value`` with one bit flipped (``bit`` wraps around the length of ``value``)."""
    assert value, "cannot flip a bit of an empty byte string"
    bit %= 8 * len(value)
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[int, int, int]:
    """(seed, size, index) with 0 <= index < size."""
    seed = draw(seeds)
    n = draw(sizes)
    i = draw(up_to(0, n - 1))
    return seed, n, i


@st.composite
def tree_and_sizes(draw: st.DrawFn, *, strict: bool = False) -> tuple[int, int, int]:
    """(seed, size1, size2) with 0 < size1 <= size2 (size1 < size2 when ``strict``)."""
    seed = draw(seeds)
    n = draw(up_to(2 if strict else 1, MAX_SIZE))
    m = draw(up_to(1, n - 1 if strict else n))
    return seed, m, n


def _expect_inclusion_failure(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> None:
    with pytest.raises(ProofError) as excinfo:
        verify_inclusion(index, size, leaf, proof, root)
    assert excinfo.value.check == "inclusion-proof"


def _expect_consistency_failure(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    with pytest.raises(ProofError) as excinfo:
        verify_consistency(size1, size2, proof, root1, root2)
    assert excinfo.value.check == "consistency-proof"


# -- the reference and the module agree on the basics ------------------------------------------


def test_hashing_matches_reference() -> None:
    assert EMPTY_ROOT == REF_EMPTY_ROOT == hashlib.sha256(b"").digest()
    for data in (b"", b"\x00", b"leaf", bytes(range(256))):
        assert leaf_hash(data) == ref_leaf_hash(data)
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == ReferenceTree([a, b]).root()
    assert node_hash(a, b) != node_hash(b, a)


def test_small_trees_exhaustively() -> None:
    """Every inclusion and consistency proof of every tree up to 64 leaves."""
    tree = ReferenceTree.from_seed(7, 64)
    for n in range(1, 65):
        root = tree.root(n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            verify_inclusion(i, n, tree.leaf(i), proof, root)
            assert root_from_inclusion_proof(i, n, tree.leaf(i), proof) == root
        for m in range(1, n + 1):
            verify_consistency(m, n, tree.consistency_proof(m, n), tree.root(m), root)


# -- valid proofs verify -----------------------------------------------------------------------


@PROPERTY
@given(tree_and_index())
def test_reference_inclusion_proofs_verify(case: tuple[int, int, int]) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.inclusion_proof(i, n)
    root = tree.root(n)
    assert root_from_inclusion_proof(i, n, tree.leaf(i), proof) == root
    verify_inclusion(i, n, tree.leaf(i), proof, root)


@PROPERTY
@given(tree_and_sizes())
def test_reference_consistency_proofs_verify(case: tuple[int, int, int]) -> None:
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    verify_consistency(m, n, tree.consistency_proof(m, n), tree.root(m), tree.root(n))


# -- tampered proofs fail ----------------------------------------------------------------------


@PROPERTY
@given(tree_and_index(), st.data())
def test_inclusion_bit_flip_fails(case: tuple[int, int, int], data: st.DataObject) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.inclusion_proof(i, n)
    leaf, root = tree.leaf(i), tree.root(n)
    # 0..len(proof)-1: a proof hash; len(proof): the leaf; len(proof)+1: the root.
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="target")
    bit = data.draw(bits, label="bit")
    if target < len(proof):
        proof[target] = flip_bit(proof[target], bit)
    elif target == len(proof):
        leaf = flip_bit(leaf, bit)
    else:
        root = flip_bit(root, bit)
    _expect_inclusion_failure(i, n, leaf, proof, root)


@PROPERTY
@given(tree_and_index(), st.sampled_from([-1, 1]))
def test_inclusion_wrong_index_fails(case: tuple[int, int, int], delta: int) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.inclusion_proof(i, n)
    _expect_inclusion_failure(i + delta, n, tree.leaf(i), proof, tree.root(n))


@PROPERTY
@given(tree_and_index(), st.sampled_from([-1, 1]))
def test_inclusion_wrong_size_fails(case: tuple[int, int, int], delta: int) -> None:
    """A proof for size n does not prove inclusion in the tree of size n +/- 1.

    The claimed tree is the real one of that size (its true root): the verifier cannot tell
    sizes apart by any other means, see ``test_inclusion_size_is_bound_only_through_the_root``.
    """
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n + 1)
    proof = tree.inclusion_proof(i, n)
    wrong = n + delta
    _expect_inclusion_failure(i, wrong, tree.leaf(i), proof, tree.root(wrong))


@PROPERTY
@given(tree_and_index(), st.booleans(), seeds)
def test_inclusion_truncated_or_extended_proof_fails(
    case: tuple[int, int, int], extend: bool, extra_seed: int
) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.inclusion_proof(i, n)
    if extend:
        proof.append(seeded_leaf(extra_seed, n))
    elif proof:
        proof.pop()
    else:
        return  # a one-leaf tree has an empty proof: nothing to truncate
    _expect_inclusion_failure(i, n, tree.leaf(i), proof, tree.root(n))


@PROPERTY
@given(tree_and_sizes(), st.data())
def test_consistency_bit_flip_fails(case: tuple[int, int, int], data: st.DataObject) -> None:
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.consistency_proof(m, n)
    root1, root2 = tree.root(m), tree.root(n)
    # 0..len(proof)-1: a proof hash; len(proof): root1; len(proof)+1: root2.
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1), label="target")
    bit = data.draw(bits, label="bit")
    if target < len(proof):
        proof[target] = flip_bit(proof[target], bit)
    elif target == len(proof):
        root1 = flip_bit(root1, bit)
    else:
        root2 = flip_bit(root2, bit)
    _expect_consistency_failure(m, n, proof, root1, root2)


@PROPERTY
@given(
    tree_and_sizes(),
    st.sampled_from(["size1", "size2"]),
    st.sampled_from([-1, 1]),
)
def test_consistency_wrong_size_fails(case: tuple[int, int, int], which: str, delta: int) -> None:
    """The proof for m -> n proves nothing about the real trees of m +/- 1 or n +/- 1 leaves."""
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n + 1)
    proof = tree.consistency_proof(m, n)
    m2, n2 = (m + delta, n) if which == "size1" else (m, n + delta)
    _expect_consistency_failure(m2, n2, proof, tree.root(m2), tree.root(n2))


@PROPERTY
@given(tree_and_sizes(), st.booleans(), seeds)
def test_consistency_truncated_or_extended_proof_fails(
    case: tuple[int, int, int], extend: bool, extra_seed: int
) -> None:
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.consistency_proof(m, n)
    if extend:
        proof.append(seeded_leaf(extra_seed, n))
    elif proof:
        proof.pop()
    else:
        return  # equal sizes: the proof is empty, nothing to truncate
    _expect_consistency_failure(m, n, proof, tree.root(m), tree.root(n))


def test_inclusion_size_is_bound_only_through_the_root() -> None:
    """Documents a property of RFC 9162 verification, not a bug.

    The verifier sees only hashes, so a proof for (index, size) can also verify for another
    size whose path has the same shape, *with the first tree's root*. Leaf 0 of a 3-leaf tree
    has the path [L1, L2]; read as a 4-leaf tree that is [L1, MTH(L2, L3)] and yields the same
    root. Callers must therefore take (size, root) together from one verified checkpoint.
    """
    tree = ReferenceTree.from_seed(1, 4)
    proof = tree.inclusion_proof(0, 3)
    verify_inclusion(0, 4, tree.leaf(0), proof, tree.root(3))
    _expect_inclusion_failure(0, 4, tree.leaf(0), proof, tree.root(4))


# -- compact ranges ----------------------------------------------------------------------------


@PROPERTY
@given(seeds, sizes, st.lists(st.integers(min_value=0, max_value=MAX_SIZE), max_size=8))
def test_compact_range_append_matches_reference(seed: int, n: int, samples: list[int]) -> None:
    tree = ReferenceTree.from_seed(seed, n)
    check_at = {s % (n + 1) for s in samples} | {0, 1 % (n + 1), n}
    rng = CompactRange()
    for size in range(n + 1):
        if size in check_at:
            assert rng.size == size
            assert rng.root() == tree.root(size)
            assert list(rng.hashes) == tree.perfect_subtree_roots(size)
        if size < n:
            rng.append(tree.leaf(size))


@PROPERTY
@given(tree_and_sizes(strict=True))
def test_compact_range_from_consistency_proof(case: tuple[int, int, int]) -> None:
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    rng = CompactRange.from_consistency_proof(
        m, n, tree.consistency_proof(m, n), tree.root(m), tree.root(n)
    )
    assert rng.size == m
    assert rng.root() == tree.root(m)
    appended = CompactRange()
    appended.extend(tree.leaves[:m])
    assert rng.hashes == appended.hashes
    assert list(rng.hashes) == tree.perfect_subtree_roots(m)
    rng.extend(tree.leaves[m:n])
    assert rng.size == n
    assert rng.root() == tree.root(n)


@PROPERTY
@given(tree_and_sizes(strict=True), st.data())
def test_compact_range_from_tampered_consistency_proof_fails(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.consistency_proof(m, n)
    j = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="hash")
    proof[j] = flip_bit(proof[j], data.draw(bits, label="bit"))
    with pytest.raises(ProofError):
        CompactRange.from_consistency_proof(m, n, proof, tree.root(m), tree.root(n))


@PROPERTY
@given(tree_and_index())
def test_compact_range_from_inclusion_proof(case: tuple[int, int, int]) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    rng = CompactRange.from_inclusion_proof(
        i, n, tree.leaf(i), tree.inclusion_proof(i, n), tree.root(n)
    )
    assert rng.size == i + 1
    assert rng.root() == tree.root(i + 1)
    assert list(rng.hashes) == tree.perfect_subtree_roots(i + 1)
    rng.extend(tree.leaves[i + 1 : n])
    assert rng.size == n
    assert rng.root() == tree.root(n)


@PROPERTY
@given(tree_and_index(), st.data())
def test_compact_range_from_tampered_inclusion_proof_fails(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    seed, n, i = case
    tree = ReferenceTree.from_seed(seed, n)
    proof = tree.inclusion_proof(i, n)
    leaf = tree.leaf(i)
    target = data.draw(st.integers(min_value=0, max_value=len(proof)), label="target")
    bit = data.draw(bits, label="bit")
    if target < len(proof):
        proof[target] = flip_bit(proof[target], bit)
    else:
        leaf = flip_bit(leaf, bit)
    with pytest.raises(ProofError):
        CompactRange.from_inclusion_proof(i, n, leaf, proof, tree.root(n))


@PROPERTY
@given(tree_and_sizes())
def test_compact_range_seeded_at_m_and_appended_to_n_gives_full_root(
    case: tuple[int, int, int],
) -> None:
    """A range seeded with the perfect-subtree roots of [0, m), appended up to n, has MTH(n)."""
    seed, m, n = case
    tree = ReferenceTree.from_seed(seed, n)
    rng = CompactRange(m, tree.perfect_subtree_roots(m))
    assert rng.root() == tree.root(m)
    for k in range(m, n):
        rng.append(tree.leaf(k))
    assert rng.size == n
    assert rng.root() == tree.root(n)


@PROPERTY
@given(seeds, st.integers(min_value=0, max_value=MAX_SIZE), st.integers(0, 64))
def test_compact_range_state_round_trip(seed: int, n: int, more: int) -> None:
    tree = ReferenceTree.from_seed(seed, n + more)
    rng = CompactRange()
    rng.extend(tree.leaves[:n])
    state = rng.state()
    assert state == CompactRangeState(n, tuple(tree.perfect_subtree_roots(n)))
    restored = CompactRange.from_state(state)
    assert restored.size == rng.size
    assert restored.hashes == rng.hashes
    assert restored.root() == rng.root() == tree.root(n)
    assert restored.state() == state
    # The restored range and a copy both carry on like the original, independently of it.
    copied = rng.copy()
    restored.extend(tree.leaves[n:])
    copied.extend(tree.leaves[n:])
    assert restored.root() == copied.root() == tree.root(n + more)
    assert rng.size == n
    assert rng.root() == tree.root(n)
    assert rng.state() == state


@PROPERTY
@given(
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=-3, max_value=3).filter(lambda d: d != 0),
)
def test_compact_range_wrong_number_of_hashes_fails(size: int, delta: int) -> None:
    count = size.bit_count() + delta
    if count < 0:
        count = size.bit_count() - delta
    with pytest.raises(ProofError) as excinfo:
        CompactRange(size, [bytes(32)] * count)
    assert excinfo.value.check == "compact-range"


def test_compact_range_rejects_bad_hashes_and_sizes() -> None:
    with pytest.raises(ProofError):
        CompactRange(1, [bytes(31)])
    with pytest.raises(ProofError):
        CompactRange(3, [bytes(32), bytes(33)])
    with pytest.raises(ProofError):
        CompactRange.from_state(CompactRangeState(2, ()))
    with pytest.raises(ValueError, match="negative"):
        CompactRange(-1, [])


def test_compact_range_empty() -> None:
    rng = CompactRange()
    assert rng.size == 0
    assert rng.hashes == ()
    assert rng.root() == EMPTY_ROOT == ReferenceTree().root(0)
    assert CompactRange.from_state(rng.state()).root() == EMPTY_ROOT
    assert CompactRange(0, []).root() == EMPTY_ROOT


# -- edge cases --------------------------------------------------------------------------------


def _tree(n: int) -> ReferenceTree:
    return ReferenceTree.from_seed(42, n)


def test_consistency_equal_sizes() -> None:
    tree = _tree(8)
    for n in (1, 5, 8):
        root = tree.root(n)
        verify_consistency(n, n, [], root, root)
        assert tree.consistency_proof(n, n) == []
        _expect_consistency_failure(n, n, [tree.leaf(0)], root, root)
        _expect_consistency_failure(n, n, [], root, tree.root(n - 1))
        _expect_consistency_failure(n, n, [], flip_bit(root, 0), root)
        with pytest.raises(ProofError, match="need growth"):
            CompactRange.from_consistency_proof(n, n, [], root, root)


def test_consistency_from_empty_tree_rejected() -> None:
    tree = _tree(4)
    for n in (0, 1, 4):
        _expect_consistency_failure(0, n, [], EMPTY_ROOT, tree.root(n))
    _expect_consistency_failure(0, 4, [tree.root(4)], EMPTY_ROOT, tree.root(4))
    _expect_consistency_failure(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)


def test_consistency_shrinking_tree_rejected() -> None:
    tree = _tree(8)
    for m, n in ((8, 7), (2, 1), (1, 0)):
        proof = tree.consistency_proof(n, m) if n else []
        with pytest.raises(ProofError, match="shrank") as excinfo:
            verify_consistency(m, n, proof, tree.root(m), tree.root(n))
        assert excinfo.value.check == "consistency-proof"
        assert "shrank" in str(excinfo.value)
        with pytest.raises(ProofError):
            CompactRange.from_consistency_proof(m, n, [], tree.root(m), tree.root(n))


def test_consistency_empty_proof_for_growth_rejected() -> None:
    tree = _tree(8)
    _expect_consistency_failure(4, 8, [], tree.root(4), tree.root(8))
    _expect_consistency_failure(3, 8, [], tree.root(3), tree.root(8))


def test_consistency_negative_sizes_rejected() -> None:
    tree = _tree(4)
    _expect_consistency_failure(-1, -1, [], tree.root(1), tree.root(1))
    _expect_consistency_failure(-1, 4, tree.consistency_proof(1, 4), tree.root(1), tree.root(4))
    _expect_consistency_failure(1, -1, [], tree.root(1), tree.root(1))


def test_inclusion_index_not_below_size_rejected() -> None:
    tree = _tree(8)
    leaf = tree.leaf(7)
    proof = tree.inclusion_proof(7, 8)
    for index, size in ((8, 8), (9, 8), (7, 7), (0, 0)):
        with pytest.raises(ProofError, match="not below tree size") as excinfo:
            verify_inclusion(index, size, leaf, proof, tree.root(8))
        assert excinfo.value.check == "inclusion-proof"
        with pytest.raises(ProofError):
            root_from_inclusion_proof(index, size, leaf, proof)
        with pytest.raises(ProofError):
            CompactRange.from_inclusion_proof(index, size, leaf, proof, tree.root(8))


def test_inclusion_negative_index_rejected() -> None:
    """Bits above the proof length are never read, so -1 looked like n - 1 in perfect trees."""
    tree = _tree(4)
    proof = tree.inclusion_proof(3, 4)
    verify_inclusion(3, 4, tree.leaf(3), proof, tree.root(4))
    for index in (-1, -5):
        _expect_inclusion_failure(index, 4, tree.leaf(3), proof, tree.root(4))
        with pytest.raises(ProofError):
            CompactRange.from_inclusion_proof(index, 4, tree.leaf(3), proof, tree.root(4))
    _expect_inclusion_failure(-1, 1, tree.leaf(0), [], tree.leaf(0))


def test_inclusion_leaf_must_be_a_hash() -> None:
    """With a one-leaf tree the root *is* the leaf: a non-hash leaf must not verify itself."""
    for leaf in (b"", b"short", bytes(33)):
        _expect_inclusion_failure(0, 1, leaf, [], leaf)
    tree = _tree(1)
    verify_inclusion(0, 1, tree.leaf(0), [], tree.root())
