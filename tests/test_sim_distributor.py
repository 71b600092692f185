"""The simulator's distributor, over real HTTP on loopback: what the witnesses hand it
(Rekor v2 shards and the Rekor v1 active tree), checkpoint.N and byWitness as the
transparency.dev distributor serves them, view b of a split handed to it, and the first
witness's read endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from monitor.core.errors import ProofError
from monitor.sim.faults import Faults
from monitor.sim.run import RunningSim, SimConfig, start
from monitor.tlog.merkle import verify_consistency
from tests.simlog import harness, run
from tests.witness_support import (
    NAMES,
    SHARD,
    A,
    B,
    C,
    dist,
    get,
    log_id,
    origin_id,
    parse_vkey,
    sim_keys,
    size_root,
    split_note,
    v1_head,
    v2_note,
    valid,
)

# --- the distributor ---------------------------------------------------------------------------


def test_distributor_lists_the_log_and_the_witnesses(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            status, text = await get(h.session, f"{h.sim.base_url}/distributor/v0/logs")
            assert status == 200
            assert json.loads(text) == sorted([log_id(h), origin_id(await v1_head(h))])
            status, text = await get(h.session, f"{h.sim.base_url}/distributor/v0/witnesses")
            vkeys = (tmp_path / "witnesses.txt").read_text().splitlines()
            assert status == 200
            assert json.loads(text) == sorted(vkeys)

    run(go)


def test_distributor_checkpoint_n_and_by_witness(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            served = await v2_note(h)
            for n in (1, 2, 3):
                status, note = await dist(h, f"checkpoint.{n}")
                assert status == 200
                assert size_root(note) == size_root(served)
                assert split_note(note)[1][0][0] == h.v2.log.key_name  # the log's line first
                assert len(valid(note, keys)) == n == len(split_note(note)[1]) - 1
            for name in NAMES:
                status, note = await dist(h, f"byWitness/{name}/checkpoint")
                assert status == 200
                assert valid(note, keys) == {name}
                assert [n for n, _ in split_note(note)[1]] == [h.v2.log.key_name, name]
            assert (await dist(h, "checkpoint.4"))[0] == 404
            assert (await dist(h, "checkpoint.0"))[0] == 400
            assert (await dist(h, "checkpoint.101"))[0] == 400
            assert (await dist(h, "checkpoint.x"))[0] == 404
            assert (await dist(h, "byWitness/witness-z.sim.example/checkpoint"))[0] == 404
            url = f"{h.sim.base_url}/distributor/v0/logs/{'0' * 64}/checkpoint.1"
            assert (await get(h.session, url))[0] == 400  # an unknown log

    run(go)


def test_distributor_keeps_the_largest_tree_each_count_cosigned(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=300) as h:
            keys = sim_keys(tmp_path)
            await h.admin("faults", {"withhold_cosigners": [C]})
            await h.admin("append", {"v2": 20})
            assert size_root((await dist(h, "checkpoint.3"))[1])[0] == 300  # not since
            _, note = await dist(h, "checkpoint.2")
            assert size_root(note)[0] == 320
            assert valid(note, keys) == {A, B}
            assert size_root((await dist(h, f"byWitness/{C}/checkpoint"))[1])[0] == 300
            await h.admin("faults", {"withhold_cosigners": [], "bad_cosigners": [B]})
            await h.admin("append", {"v2": 5})
            state = await h.admin("state")
            assert any(r.startswith(B) for r in state["distributor_refused"])
            assert size_root((await dist(h, f"byWitness/{B}/checkpoint"))[1])[0] == 320
            _status, note = await dist(h, "checkpoint.2")
            assert size_root(note)[0] == 325
            assert valid(note, keys) == {A, C}

    run(go)


@asynccontextmanager
async def started(
    tmp_path: Path, faults: Faults
) -> AsyncIterator[tuple[RunningSim, aiohttp.ClientSession]]:
    sim = await start(SimConfig(entries=400, seed=5), out=tmp_path, faults=faults)
    session = aiohttp.ClientSession()
    try:
        yield sim, session
    finally:
        await session.close()
        await sim.stop()


def test_distributor_holds_nothing_when_every_cosignature_is_withheld(tmp_path: Path) -> None:
    async def go() -> None:
        async with started(tmp_path, Faults(withhold_cosignatures=True)) as (sim, session):
            lid = hashlib.sha256(b"o:" + sim.state.v2.origin.encode()).hexdigest()
            base = f"{sim.base_url}/distributor/v0/logs/{lid}"
            assert (await get(session, f"{base}/checkpoint.1"))[0] == 404
            assert (await get(session, f"{base}/byWitness/{A}/checkpoint"))[0] == 404

    run(go)


def test_distributor_fed_view_b_shows_the_split_to_a_monitor(tmp_path: Path) -> None:
    async def go() -> None:
        faults = Faults(split_at=100, split_distributor=True)
        async with started(tmp_path, faults) as (sim, session):
            keys = sim_keys(tmp_path)
            lid = hashlib.sha256(b"o:" + sim.state.v2.origin.encode()).hexdigest()
            base = f"{sim.base_url}/distributor/v0/logs/{lid}"
            status, from_dist = await get(session, f"{base}/checkpoint.2")
            assert status == 200
            assert len(valid(from_dist, keys)) == 2
            status, honest = await get(session, f"{sim.base_url}/v2/{SHARD}/checkpoint")
            (size, root), (d_size, d_root) = size_root(honest), size_root(from_dist)
            assert size == d_size == 400
            assert root != d_root
            with pytest.raises(ProofError):
                verify_consistency(size, d_size, [], root, d_root)
            assert size_root(
                (await get(session, f"{sim.base_url}/view-b/v2/{SHARD}/checkpoint"))[1]
            ) == (d_size, d_root)

    run(go)


def test_the_distributor_holds_the_rekor_v1_active_tree_and_view_b_of_it(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            head = await v1_head(h)
            url = f"{h.sim.base_url}/distributor/v0/logs/{origin_id(head)}/checkpoint.3"
            status, held = await get(h.session, url)
            assert status == 200
            assert size_root(held) == size_root(head)
            assert valid(held, keys) == set(NAMES)
            # the log's own signature first, then the witnesses'
            assert split_note(held)[1][0][0] == split_note(head)[1][0][0] == "127.0.0.1"
            # view b goes to the distributor only once the tree grew past the split
            at = h.sim.state.v1.active.start + 5  # in the active tree
            await h.admin("faults", {"split_at": at, "split_distributor": True})
            await h.admin("append", {"v1": 3})
            status, held = await get(h.session, url)
            (size, root), (d_size, d_root) = size_root(await v1_head(h)), size_root(held)
            assert (status, size) == (200, d_size)
            assert root != d_root

    run(go)


def test_the_first_witness_serves_what_it_cosigned_at_its_read_endpoint(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            for note in (await v2_note(h), await v1_head(h)):
                url = f"{h.sim.base_url}/witness/v0/logs/{origin_id(note)}/checkpoint"
                status, held = await get(h.session, url)
                assert status == 200
                assert size_root(held) == size_root(note)
                assert valid(held, keys) == {A}
            url = f"{h.sim.base_url}/witness/v0/logs/{'0' * 64}/checkpoint"
            assert (await get(h.session, url))[0] == 404

    run(go)


def test_switching_the_distributor_to_view_b_takes_effect_on_a_larger_tree(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=300) as h:
            honest = size_root((await dist(h, "checkpoint.3"))[1])
            await h.admin("faults", {"split_at": 100, "split_distributor": True})
            # the distributor refuses another root for a size it holds, as the real one does
            assert size_root((await dist(h, "checkpoint.3"))[1]) == honest
            assert (await h.admin("state"))["distributor_refused"]
            await h.admin("append", {"v2": 10})
            fed = size_root((await dist(h, "checkpoint.3"))[1])
            assert fed == size_root(await v2_note(h, "/view-b")) != size_root(await v2_note(h))

    run(go)


def test_distributor_put_verifies_what_a_witness_hands_in(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            url = f"{h.sim.base_url}/distributor/v0/logs/{log_id(h)}/byWitness/{A}/checkpoint"
            note = (await dist(h, f"byWitness/{A}/checkpoint"))[1]

            async def put(body: str, target: str = url) -> int:
                async with h.session.put(target, data=body.encode()) as resp:
                    return resp.status

            assert await put(note) == 200
            body, lines = split_note(note)
            name, blob = lines[1]
            bad = bytearray(blob)
            bad[-1] ^= 1
            log_line = f"\u2014 {lines[0][0]} {base64.b64encode(lines[0][1]).decode()}\n"
            forged = f"{body}\n{log_line}\u2014 {name} {base64.b64encode(bytes(bad)).decode()}\n"
            assert await put(forged) == 400
            assert await put(note, url.replace(A, "witness-z.sim.example")) == 400
            assert await put("not a checkpoint\n") == 400

    run(go)


def test_a_new_v2_shard_is_cosigned_listed_in_the_policy_and_distributed(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            await h.admin("v2-shard", {"name": "log2026-sim", "entries": 20})
            status, note = await get(h.session, f"{h.sim.base_url}/v2/log2026-sim/checkpoint")
            assert status == 200
            assert valid(note, keys) == set(NAMES)
            origin = note.split("\n")[0]
            policy = (tmp_path / "witness-policy.txt").read_text().splitlines()
            logs = [
                parse_vkey(line.split()[1], sig_type=0x01).name
                for line in policy
                if line.startswith("log ")
            ]
            assert logs == [h.v2.log.key_name, origin]
            status, text = await get(h.session, f"{h.sim.base_url}/distributor/v0/logs")
            new_id = hashlib.sha256(b"o:" + origin.encode()).hexdigest()
            v1_id = origin_id(await v1_head(h))
            assert sorted(json.loads(text)) == sorted([log_id(h), new_id, v1_id])
            url = f"{h.sim.base_url}/distributor/v0/logs/{new_id}/checkpoint.3"
            status, text = await get(h.session, url)
            assert status == 200
            assert size_root(text) == size_root(note)

    run(go)
