"""monitor.tlog.proofs: honest growth moves the verified tree, every lie stops it with the
right IntegrityType and JSON-ready evidence, on hand-built trees (MerkleStore is the oracle):
checkpoints, entries, and seeding v1 from an inclusion proof."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import partial

import pytest

from monitor.core.errors import VerificationError
from monitor.core.findings import IntegrityType
from monitor.sim.tree import MerkleStore
from monitor.tlog.checkpoint import open_checkpoint
from monitor.tlog.merkle import CompactRangeState, leaf_hash
from monitor.tlog.proofs import (
    BatchVerifier,
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    seed_from_inclusion,
    verify_extension,
)
from monitor.tlog.tileproofs import seed_v2
from tests.proof_support import (
    LEAVES,
    TREE_ID,
    V1_ORIGIN,
    V2_ORIGIN,
    V2_SIGNER,
    V2_VERIFIER,
    StoreTiles,
    fails,
    signed,
    store_of,
    verified,
)
from tests.simlog import run

# checkpoints --------------------------------------------------------------------------------


def test_honest_growth_advances_and_extends() -> None:
    store = store_of(70_001)
    state = verified(store, 300)
    for new_size in (300, 301, 1000, 65_536, 70_001):
        cp = signed(store, new_size)
        proof = store.consistency_proof(state.size, new_size)
        advance_checkpoint(state, cp, proof)
        new = verify_extension(state, cp, LEAVES[state.size : new_size], state.size)
        assert new.range == store.compact_range(new_size).state()
        assert (new.size, new.root_hash, new.checkpoint_raw) == (new_size, cp.root_hash, cp.raw)
        state = new
    # from the empty tree, no proof is needed; the entries prove everything
    empty = VerifiedTree.empty(signed(store, 10))
    advance_checkpoint(empty, signed(store, 10), None)


def test_lies_about_checkpoints() -> None:
    store = store_of(600)
    state = verified(store, 500)
    forked = MerkleStore([*LEAVES[:100], leaf_hash(b"forked"), *LEAVES[101:600]])

    err = fails(
        IntegrityType.TREE_SHRUNK, lambda: advance_checkpoint(state, signed(store, 499), None)
    )
    assert "shrank from 500 to 499" in err.message
    assert err.evidence["old"] == {
        "size": 500,
        "root_hash": store.root(500).hex(),
        "checkpoint": state.checkpoint_raw,
        "tree_id": None,
    }
    assert err.evidence["new"] == {
        "size": 499,
        "root_hash": store.root(499).hex(),
        "checkpoint": signed(store, 499).raw,
    }

    err = fails(
        IntegrityType.TREE_CHANGED, lambda: advance_checkpoint(state, signed(forked, 500), None)
    )
    assert "two roots for tree size 500" in err.message

    cp = signed(forked, 600)
    proof = forked.consistency_proof(500, 600)
    err = fails(IntegrityType.CONSISTENCY_FAILURE, lambda: advance_checkpoint(state, cp, proof))
    assert err.evidence["proof"] == [h.hex() for h in proof]
    assert "not an extension of the verified tree of size 500" in err.message
    # a proof for the honest tree does not fit a forked checkpoint either, nor garbage
    honest_proof = store.consistency_proof(500, 600)
    fails(IntegrityType.CONSISTENCY_FAILURE, lambda: advance_checkpoint(state, cp, honest_proof))
    fails(IntegrityType.CONSISTENCY_FAILURE, lambda: advance_checkpoint(state, cp, []))
    # verify_extension catches the same lies without a proof
    fails(IntegrityType.TREE_SHRUNK, lambda: verify_extension(state, signed(store, 499), [], 500))
    fails(IntegrityType.TREE_CHANGED, lambda: verify_extension(state, signed(forked, 500), [], 500))
    err = fails(
        IntegrityType.ENTRY_NOT_IN_TREE,
        lambda: verify_extension(state, signed(forked, 600), LEAVES[500:600], 500),
    )
    with pytest.raises(ValueError, match="consistency proof from size 500 to 600 is needed"):
        advance_checkpoint(state, signed(store, 600), None)


def test_another_tree_is_a_caller_error_not_a_lie() -> None:
    state = verified(store_of(600), 500)
    other = open_checkpoint(
        V2_SIGNER.sign_checkpoint(V2_ORIGIN + "-2026", 10, store_of(10).root()), [V2_VERIFIER]
    )
    with pytest.raises(ValueError, match="starts from its own seed"):
        advance_checkpoint(state, other, None)
    with pytest.raises(ValueError, match="starts from its own seed"):
        verify_extension(state, other, [], 500)


# entries ------------------------------------------------------------------------------------


def test_tampered_entries_are_not_in_the_tree() -> None:
    store = store_of(600)
    state = verified(store, 500)
    cp = signed(store, 600)
    bad = list(LEAVES[500:600])
    bad[42] = leaf_hash(b"tampered")
    err = fails(IntegrityType.ENTRY_NOT_IN_TREE, lambda: verify_extension(state, cp, bad, 500))
    ev = err.evidence
    assert (ev["first_index"], ev["end_index"], ev["leaf_count"]) == (500, 600, 100)
    assert ev["expected_root"] == store.root(600).hex()
    assert ev["computed_root"] == MerkleStore([*LEAVES[:500], *bad]).root().hex()
    assert ev["leaf_hashes_sha256"] == hashlib.sha256(b"".join(bad)).hexdigest()
    assert "index" not in ev  # a range does not say which entry is bad
    assert "entries [500, 600) do not hash into the signed tree" in err.message

    # a range of one entry names it
    cp501 = signed(store, 501)
    err = fails(
        IntegrityType.ENTRY_NOT_IN_TREE,
        lambda: verify_extension(state, cp501, [leaf_hash(b"x")], 500),
    )
    assert (err.evidence["index"], err.evidence["leaf_hash"]) == (500, leaf_hash(b"x").hex())


def test_wrong_number_of_leaves() -> None:
    store = store_of(600)
    state = verified(store, 500)
    cp = signed(store, 600)
    err = fails(
        IntegrityType.MISSING_ENTRIES, lambda: verify_extension(state, cp, LEAVES[500:599], 500)
    )
    assert (err.evidence["missing_first_index"], err.evidence["missing_end_index"]) == (599, 600)
    assert "entries [599, 600) are missing" in err.message
    err = fails(
        IntegrityType.ENTRY_NOT_IN_TREE, lambda: verify_extension(state, cp, LEAVES[500:601], 500)
    )
    assert "entries [600, 601) are not in it" in err.message
    assert err.evidence["chunk_end_index"] == 601
    fails(IntegrityType.MISSING_ENTRIES, lambda: verify_extension(state, cp, [], 500))
    # the caller's mistakes are not the log's lies
    with pytest.raises(ValueError, match="chunk starts at 499, expected 500"):
        verify_extension(state, cp, LEAVES[499:600], 499)
    with pytest.raises(ValueError, match="is 5 bytes"):
        verify_extension(state, cp, [b"short", *LEAVES[501:600]], 500)


def test_batch_verifier_takes_ordered_chunks() -> None:
    store = store_of(70_001)
    state = verified(store, 1000)
    cp = signed(store)
    v = BatchVerifier(state, cp)
    assert (v.next_index, v.remaining) == (1000, 69_001)
    for lo in range(1000, 70_001, 4096):
        hi = min(lo + 4096, 70_001)
        v.add(lo, LEAVES[lo:hi])
    assert v.remaining == 0
    assert v.finish().range == store.compact_range().state()
    with pytest.raises(ValueError, match="finished or failed"):
        v.finish()

    v = BatchVerifier(state, cp)
    v.add(1000, LEAVES[1000:1010])
    with pytest.raises(ValueError, match="chunk starts at 1020, expected 1010"):
        v.add(1020, LEAVES[1020:1030])  # a gap: out of order
    err = fails(IntegrityType.MISSING_ENTRIES, v.finish)
    assert err.evidence["leaf_count"] == 10
    with pytest.raises(ValueError, match="finished or failed"):
        v.add(1010, LEAVES[1010:1020])


def test_bounded_steps_through_proven_intermediate_targets() -> None:
    """The memory-bounded catch-up: each step ends at a prefix proven from tiles."""
    store = store_of(70_001)
    cp = signed(store)
    tampered = list(LEAVES)
    tampered[30_000] = leaf_hash(b"tampered")

    async def body() -> None:
        state = await seed_v2(StoreTiles(store), cp, 0)
        for m in (256, 1000, 30_001, 65_536, 70_001):
            target = await seed_v2(StoreTiles(store), cp, m)
            nxt = verify_extension(state, target, LEAVES[state.size : m], state.size)
            assert nxt.root_hash == store.root(m)
            assert nxt.checkpoint_raw == cp.raw
            if state.size <= 30_000 < m:  # the same step with a tampered entry stops there
                err = fails(
                    IntegrityType.ENTRY_NOT_IN_TREE,
                    partial(verify_extension, state, target, tampered[state.size : m], state.size),
                )
                assert (err.evidence["first_index"], err.evidence["end_index"]) == (1000, 30_001)
                assert err.evidence["new"] == {
                    "size": 30_001,
                    "root_hash": store.root(30_001).hex(),
                    "checkpoint": cp.raw,
                    "tree_id": None,
                }
            state = nxt
        assert state.root_hash == cp.root_hash
        with pytest.raises(ValueError, match="below the verified size"):
            verify_extension(state, await seed_v2(StoreTiles(store), cp, 10), [], 70_001)

    run(body)


# seeding v1 from an inclusion proof ---------------------------------------------------------


def test_seed_from_inclusion_hand_built() -> None:
    store = store_of(600)
    cp = signed(store, 600, V1_ORIGIN)
    for index in (0, 1, 255, 256, 599):
        proof = store.inclusion_proof(index, 600)
        tree = seed_from_inclusion(TREE_ID, index, LEAVES[index], proof, cp)
        assert tree.range == store.compact_range(index + 1).state()
        assert (tree.size, tree.tree_id, tree.checkpoint_raw) == (index + 1, TREE_ID, cp.raw)
        assert tree.origin == V1_ORIGIN
        rest = verify_extension(tree, cp, LEAVES[index + 1 : 600], index + 1)
        assert rest.root_hash == cp.root_hash
        assert rest.tree_id == TREE_ID

    proof = store.inclusion_proof(300, 600)
    err = fails(
        IntegrityType.ENTRY_NOT_IN_TREE,
        lambda: seed_from_inclusion(TREE_ID, 300, LEAVES[301], proof, cp),
    )
    ev = err.evidence
    assert (ev["index"], ev["leaf_hash"], ev["tree_id"]) == (300, LEAVES[301].hex(), str(TREE_ID))
    assert ev["proof"] == [h.hex() for h in proof]
    fails(
        IntegrityType.ENTRY_NOT_IN_TREE,
        lambda: seed_from_inclusion(TREE_ID, 600, LEAVES[300], proof, cp),  # beyond the tree
    )
    with pytest.raises(VerificationError, match="is not tree 7") as info:
        seed_from_inclusion(7, 300, LEAVES[300], proof, cp)
    assert not isinstance(info.value, IntegrityFailure)


def test_verified_tree_checks_itself() -> None:
    tree = verified(store_of(600), 300)
    with pytest.raises(ValueError, match="has root"):
        replace(tree, root_hash=store_of(600).root(299))
    with pytest.raises(ValueError, match="compact range has size 300, tree has 299"):
        replace(tree, size=299)
    with pytest.raises(ValueError, match="malformed"):
        replace(tree, range=CompactRangeState(300, ()), size=300)
    cp = signed(store_of(600), 600, V1_ORIGIN)
    with pytest.raises(ValueError, match="is not tree 7"):
        VerifiedTree.empty(cp, 7)
    assert VerifiedTree.empty(cp, TREE_ID).origin == V1_ORIGIN
