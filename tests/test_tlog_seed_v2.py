"""Seeding v2 from tiles (monitor.tlog.tileproofs): the compact range of every start, and
consistency and inclusion proofs from tiles as RFC 6962 gives them, on hand-built trees;
every tampered tile it reads refused."""

from __future__ import annotations

import random

import pytest

from monitor.core.findings import IntegrityType
from monitor.sim.tree import MerkleStore
from monitor.tlog.merkle import EMPTY_ROOT
from monitor.tlog.proofs import advance_checkpoint, verify_extension
from monitor.tlog.tileproofs import seed_v2, v2_consistency_proof, v2_inclusion_proof
from tests.proof_support import LEAVES, StoreTiles, afails, leaves, signed, store_of, verified
from tests.simlog import run

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
