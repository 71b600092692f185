"""monitor.tlog.proofs: honest growth moves the verified tree, every lie stops it with the
right IntegrityType and JSON-ready evidence. Hand-built trees (MerkleStore is the oracle) and
the simulator over loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.errors import VerificationError
from monitor.core.findings import IntegrityType
from monitor.logclient.v2 import RekorV2Client
from monitor.sim.signing import NoteSigner
from monitor.sim.tree import MerkleStore
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint
from monitor.tlog.merkle import EMPTY_ROOT, CompactRangeState, leaf_hash
from monitor.tlog.note import Ed25519NoteVerifier
from monitor.tlog.proofs import (
    BatchVerifier,
    IntegrityFailure,
    VerifiedTree,
    advance_checkpoint,
    seed_from_inclusion,
    verify_extension,
)
from monitor.tlog.tileproofs import seed_v2, v2_consistency_proof, v2_inclusion_proof
from monitor.tlog.tiles import split_tile, tile_path
from tests.simlog import Harness, harness, run

# --- hand-built trees ------------------------------------------------------------------------

V2_ORIGIN = "log.example/v2/test"
V1_HOST = "rekor.example"
TREE_ID = 1234567890123
V1_ORIGIN = f"{V1_HOST} - {TREE_ID}"


def _signer(name: str, seed: bytes) -> tuple[NoteSigner, Ed25519NoteVerifier]:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    verifier = Ed25519NoteVerifier.create(name, key.public_key())
    return NoteSigner(name, key, verifier.key_id), verifier


V2_SIGNER, V2_VERIFIER = _signer(V2_ORIGIN, b"v2")
V1_SIGNER, V1_VERIFIER = _signer(V1_HOST, b"v1")


def signed(
    store: MerkleStore, size: int | None = None, origin: str = V2_ORIGIN
) -> SignedCheckpoint:
    """A checkpoint of ``store`` at ``size``, signed and opened as the clients do."""
    n = store.size if size is None else size
    signer, verifier = (V2_SIGNER, V2_VERIFIER) if origin == V2_ORIGIN else (V1_SIGNER, V1_VERIFIER)
    return open_checkpoint(signer.sign_checkpoint(origin, n, store.root(n)), [verifier])


def leaves(n: int, salt: str = "") -> list[bytes]:
    return [leaf_hash(f"{salt}entry {i}".encode()) for i in range(n)]


LEAVES = leaves(70_001)
_STORES: dict[int, MerkleStore] = {}


def store_of(size: int) -> MerkleStore:
    if size not in _STORES:
        _STORES[size] = MerkleStore(LEAVES[:size])
    return _STORES[size]


def verified(store: MerkleStore, size: int, origin: str = V2_ORIGIN) -> VerifiedTree:
    """The verified tree of [0, size) of ``store``, proven from scratch."""
    cp = signed(store, size, origin)
    tree_id = None if origin == V2_ORIGIN else TREE_ID
    return verify_extension(VerifiedTree.empty(cp, tree_id), cp, LEAVES[:size], 0)


class StoreTiles:
    """Hash tiles served from a MerkleStore, optionally with every hash of some tiles flipped."""

    def __init__(self, store: MerkleStore, tamper: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.tamper = tamper
        self.read: list[str] = []

    async def tile(self, level: int, index: int, width: int) -> list[bytes]:
        path = tile_path(level, index, width)
        self.read.append(path)
        hashes = split_tile(self.store.tile(level, index, width), width)
        return [_flip(h) for h in hashes] if path in self.tamper else hashes


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def fails(kind: IntegrityType, fn: Callable[[], object]) -> IntegrityFailure:
    """Run ``fn``; it must raise IntegrityFailure of ``kind`` with JSON-ready evidence."""
    with pytest.raises(IntegrityFailure) as info:
        fn()
    return _checked(info.value, kind)


async def afails(kind: IntegrityType, aw: Awaitable[object]) -> IntegrityFailure:
    with pytest.raises(IntegrityFailure) as info:
        await aw
    return _checked(info.value, kind)


def _checked(err: IntegrityFailure, kind: IntegrityType) -> IntegrityFailure:
    assert err.type == kind, err
    assert err.check == str(kind)
    assert isinstance(err, VerificationError)
    assert json.loads(json.dumps(err.evidence)) == err.evidence  # JSON round trip, unchanged
    return err


# seeding v2 from tiles ------------------------------------------------------------------------

SIZES = [1, 2, 255, 256, 257, 600, 65_535, 65_536, 65_537, 70_001]


def _starts(size: int) -> list[int]:
    rnd = random.Random(size)
    fixed = {0, 1, 255, 256, 257, 600, 65_536, size // 2, size - 1, size}
    return sorted({s for s in fixed if s <= size} | {rnd.randrange(size + 1) for _ in range(3)})


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_seed_v2_gives_the_compact_range_of_every_start(size: int) -> None:
    store = store_of(size)
    cp = signed(store)

    async def body() -> None:
        for start in _starts(size):
            src = StoreTiles(store)
            tree = await seed_v2(src, cp, start)
            assert tree.range == store.compact_range(start).state(), start
            assert tree.size == start
            assert tree.root_hash == store.root(start)
            assert tree.checkpoint_raw == cp.raw
            assert tree.tree_id is None
            assert len(src.read) == len(set(src.read)) <= 8  # O(log n) tiles, each read once
            # and it is a start point: the rest of the log proves onto it
            done = verify_extension(tree, cp, LEAVES[start:size], start)
            assert done.range == store.compact_range().state()

    run(body)


@pytest.mark.parametrize("size", SIZES)
def test_v2_consistency_proof_from_tiles_is_rfc6962s(size: int) -> None:
    store = store_of(size)
    cp = signed(store)

    async def body() -> None:
        for old in _starts(size):
            proof = await v2_consistency_proof(StoreTiles(store), old, cp)
            if 0 < old < size:
                assert proof == store.consistency_proof(old, size), old
                advance_checkpoint(verified(store, old), cp, proof)
            else:
                assert proof == []

    run(body)


@pytest.mark.parametrize("size", SIZES)
def test_v2_inclusion_proof_from_tiles_is_rfc6962s(size: int) -> None:
    store = store_of(size)
    cp = signed(store)

    async def body() -> None:
        for index in {i for i in _starts(size) if i < size}:
            proof = await v2_inclusion_proof(StoreTiles(store), index, cp)
            assert proof == store.inclusion_proof(index, size), index
        with pytest.raises(ValueError, match="not in a tree"):
            await v2_inclusion_proof(StoreTiles(store), size, cp)

    run(body)


def test_seed_v2_rejects_every_tampered_tile_it_reads() -> None:
    store = store_of(70_001)
    cp = signed(store)

    async def body() -> None:
        for start in (1, 257, 600, 65_537, 70_000, 70_001):
            honest = StoreTiles(store)
            await seed_v2(honest, cp, start)
            assert honest.read
            for path in honest.read:
                err = await afails(
                    IntegrityType.CONSISTENCY_FAILURE,
                    seed_v2(StoreTiles(store, frozenset({path})), cp, start),
                )
                assert err.evidence["start"] == start
                assert path in err.evidence["tiles"]  # type: ignore[operator]
                assert "hash tiles contradict" in err.message
        # a checkpoint that is not the tiles' tree: the tip itself does not match
        other = signed(MerkleStore(leaves(600, "other")))
        await afails(
            IntegrityType.CONSISTENCY_FAILURE, seed_v2(StoreTiles(store_of(600)), other, 600)
        )

    run(body)


def test_seed_v2_edges() -> None:
    async def body() -> None:
        empty = MerkleStore()
        cp0 = signed(empty)
        tree = await seed_v2(StoreTiles(empty), cp0, 0)
        assert (tree.size, tree.root_hash) == (0, EMPTY_ROOT)
        src = StoreTiles(store_of(600))
        tree = await seed_v2(src, signed(store_of(600)), 0)
        assert tree.size == 0
        assert src.read == []  # the empty prefix needs no proof
        with pytest.raises(ValueError, match="not within"):
            await seed_v2(src, signed(store_of(600)), 601)

    run(body)


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


# --- the simulator over loopback -------------------------------------------------------------


async def _v1_log_entry(h: Harness, index: int) -> tuple[int, bytes, list[bytes], str]:
    """``GET /api/v1/log/entries?logIndex=N``: local index, leaf hash, inclusion proof hashes
    and the proof's signed checkpoint."""
    url = f"{h.sim.base_url}/api/v1/log/entries"
    async with h.session.get(url, params={"logIndex": str(index)}) as resp:
        assert resp.status == 200
        doc = await resp.json()
    (entry,) = doc.values()
    proof = entry["verification"]["inclusionProof"]
    body = base64.b64decode(entry["body"])
    hashes = [bytes.fromhex(x) for x in proof["hashes"]]
    return int(proof["logIndex"]), leaf_hash(body), hashes, str(proof["checkpoint"])


async def _v1_leaves(h: Harness, start: int, end: int) -> list[bytes]:
    got = await h.v1.entries(range(start, end))
    return [leaf_hash(got[i].body) for i in range(start, end)]


def test_v1_seed_from_a_served_inclusion_proof_then_follow(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=2) as h:
            info = await h.v1.log_info()
            shard = info.shards()[-1]
            tree_id = info.active.tree_id
            local, leaf, hashes, note = await _v1_log_entry(h, 449)
            assert local == 449 - shard.start
            cp = open_checkpoint(note, [h.v1.log.v1_note_verifier()])
            state = seed_from_inclusion(tree_id, local, leaf, hashes, cp)
            assert (state.size, state.tree_id) == (local + 1, tree_id)

            await h.admin("append", {"v1": 30})
            new = (await h.v1.log_info()).active
            proof = await h.v1.consistency_proof(state.size, new.size, tree_id)
            advance_checkpoint(state, new.checkpoint, proof)
            fresh = await _v1_leaves(h, shard.start + state.size, shard.start + new.size)
            state = verify_extension(state, new.checkpoint, fresh, state.size)
            assert (state.size, state.root_hash) == (330, new.root_hash)
            whole = MerkleStore(await _v1_leaves(h, shard.start, shard.start + 330))
            assert state.range == whole.compact_range().state()
            assert state.range.size == 330

    run(body)


def test_v1_lies(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=2) as h:
            info = await h.v1.log_info()
            tid, start = info.active.tree_id, info.shards()[-1].start
            state = verify_extension(
                VerifiedTree.empty(info.active.checkpoint, tid),
                info.active.checkpoint,
                await _v1_leaves(h, start, 600),
                0,
            )
            assert state.root_hash == info.active.root_hash

            await h.admin("faults", {"shrink_by": 5})
            shrunk = (await h.v1.log_info()).active
            fails(
                IntegrityType.TREE_SHRUNK, lambda: advance_checkpoint(state, shrunk.checkpoint, [])
            )
            await h.admin("faults", {"shrink_by": 0, "fork_at": 350})  # below the old size
            same_size = (await h.v1.log_info()).active
            assert same_size.size == state.size
            fails(
                IntegrityType.TREE_CHANGED,
                lambda: advance_checkpoint(state, same_size.checkpoint, None),
            )

            await h.admin("faults", {"fork_at": None})
            await h.admin("append", {"v1": 10})
            await h.admin("faults", {"fork_at": 350})  # a fork after growth
            forked = (await h.v1.log_info()).active
            proof = await h.v1.consistency_proof(state.size, forked.size, tid)
            err = fails(
                IntegrityType.CONSISTENCY_FAILURE,
                lambda: advance_checkpoint(state, forked.checkpoint, proof),
            )
            assert err.evidence["new"]["checkpoint"] == forked.checkpoint.raw  # type: ignore[index]

            await h.admin("faults", {"fork_at": None, "tamper": [605]})
            honest = (await h.v1.log_info()).active
            proof = await h.v1.consistency_proof(state.size, honest.size, tid)
            advance_checkpoint(state, honest.checkpoint, proof)
            fresh = await _v1_leaves(h, 600, 610)
            err = fails(
                IntegrityType.ENTRY_NOT_IN_TREE,
                lambda: verify_extension(state, honest.checkpoint, fresh, 300),
            )
            assert (err.evidence["first_index"], err.evidence["end_index"]) == (300, 310)
            assert err.evidence["old"]["tree_id"] == str(tid)  # type: ignore[index]

            await h.admin("faults", {"tamper": []})
            state = verify_extension(state, honest.checkpoint, await _v1_leaves(h, 600, 610), 300)
            assert state.root_hash == honest.root_hash

    run(body)


def test_v1_shard_rotation_starts_a_new_tree(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600, shards=2) as h:
            old = (await h.v1.log_info()).active
            state = verify_extension(
                VerifiedTree.empty(old.checkpoint, old.tree_id),
                old.checkpoint,
                await _v1_leaves(h, 300, 600),
                0,
            )
            await h.admin("rotate", {})
            await h.admin("append", {"v1": 40})
            info = await h.v1.log_info()
            # the new, smaller tree is not a shrink of the old one
            with pytest.raises(ValueError, match="starts from its own seed"):
                advance_checkpoint(state, info.active.checkpoint, None)
            advance_checkpoint(state, info.inactive[-1].checkpoint, None)  # the old tree, frozen
            new = VerifiedTree.empty(info.active.checkpoint, info.active.tree_id)
            new = verify_extension(new, info.active.checkpoint, await _v1_leaves(h, 600, 640), 0)
            assert (new.size, new.root_hash) == (40, info.active.root_hash)

    run(body)


def test_v2_seeds_and_honest_growth(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=700) as h:
            cp = await h.v2.checkpoint()
            assert cp.size == 700
            store = MerkleStore(leaf_hash(b) for b in await h.v2.entries(0, 700, 700))
            for start in (0, 1, 255, 256, 257, 600, 700):
                tree = await seed_v2(h.v2, cp, start)
                assert tree.range == store.compact_range(start).state(), start
                assert tree.root_hash == store.root(start)

            state = await seed_v2(h.v2, cp, 257)
            await h.admin("append", {"v2": 100})
            new = await h.v2.checkpoint()
            proof = await v2_consistency_proof(h.v2, state.size, new)
            advance_checkpoint(state, new, proof)
            fresh = [leaf_hash(b) for b in await h.v2.entries(257, 800, 800)]
            state = verify_extension(state, new, fresh, 257)
            store.extend(fresh[700 - 257 :])
            assert state.range == store.compact_range(800).state()
            assert (state.size, state.root_hash) == (800, new.root_hash)

    run(body)


class TamperedTiles:
    """The real client over loopback, with every hash of one tile flipped on the way in."""

    def __init__(self, inner: RekorV2Client, path: str) -> None:
        self.inner = inner
        self.path = path

    async def tile(self, level: int, index: int, width: int) -> list[bytes]:
        hashes = await self.inner.tile(level, index, width)
        return [_flip(x) for x in hashes] if tile_path(level, index, width) == self.path else hashes


def test_v2_lies(tmp_path: Path) -> None:
    async def body() -> None:
        async with harness(tmp_path, entries=600) as h:
            cp = await h.v2.checkpoint()
            state = await seed_v2(h.v2, cp, 600)

            # tampered hash tiles: from a man in the middle, and from the log's own fork
            for start, path in (
                (300, "tile/0/001"),
                (600, "tile/0/002.p/88"),
                (600, "tile/1/000.p/2"),
            ):
                err = await afails(
                    IntegrityType.CONSISTENCY_FAILURE, seed_v2(TamperedTiles(h.v2, path), cp, start)
                )
                assert path in err.evidence["tiles"]  # type: ignore[operator]
            await h.admin("faults", {"fork_at": 10})
            await afails(IntegrityType.CONSISTENCY_FAILURE, seed_v2(h.v2, cp, 300))
            await afails(IntegrityType.CONSISTENCY_FAILURE, seed_v2(h.v2, cp, 600))

            # a changed tree for a known size (the fork, no growth)
            same_size = await h.v2.checkpoint()
            assert same_size.size == 600
            fails(IntegrityType.TREE_CHANGED, lambda: advance_checkpoint(state, same_size, None))

            await h.admin("faults", {"fork_at": None, "shrink_by": 5})
            shrunk = await h.v2.checkpoint()
            fails(IntegrityType.TREE_SHRUNK, lambda: advance_checkpoint(state, shrunk, None))

            await h.admin("faults", {"shrink_by": 0})
            await h.admin("append", {"v2": 50})
            await h.admin("faults", {"fork_at": 10})  # a fork after growth
            forked = await h.v2.checkpoint()
            proof = await v2_consistency_proof(h.v2, 600, forked)
            fails(
                IntegrityType.CONSISTENCY_FAILURE, lambda: advance_checkpoint(state, forked, proof)
            )

            await h.admin("faults", {"fork_at": None, "tamper": [610]})
            honest = await h.v2.checkpoint()
            advance_checkpoint(state, honest, await v2_consistency_proof(h.v2, 600, honest))
            fresh = [leaf_hash(b) for b in await h.v2.entries(600, 650, 650)]
            err = fails(
                IntegrityType.ENTRY_NOT_IN_TREE, lambda: verify_extension(state, honest, fresh, 600)
            )
            assert (err.evidence["first_index"], err.evidence["end_index"]) == (600, 650)

            await h.admin("faults", {"tamper": []})
            fresh = [leaf_hash(b) for b in await h.v2.entries(600, 650, 650)]
            assert verify_extension(state, honest, fresh, 600).root_hash == honest.root_hash

    run(body)
