"""monitor.tlog.proofs against the simulator over loopback: v1 seeded from a served inclusion
proof then followed, v1 lies and shard rotation, v2 seeded and grown honestly, and v2 lies."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from monitor.core.findings import IntegrityType
from monitor.logclient.v2 import RekorV2Client
from monitor.sim.tree import MerkleStore
from monitor.tlog.checkpoint import open_checkpoint
from monitor.tlog.merkle import leaf_hash
from monitor.tlog.proofs import (
    VerifiedTree,
    advance_checkpoint,
    seed_from_inclusion,
    verify_extension,
)
from monitor.tlog.tileproofs import seed_v2, v2_consistency_proof
from monitor.tlog.tiles import tile_path
from tests.proof_support import afails, fails, flip
from tests.simlog import Harness, harness, run

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
        return [flip(x) for x in hashes] if tile_path(level, index, width) == self.path else hashes


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
