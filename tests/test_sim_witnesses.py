"""The simulator's witnesses, over real HTTP on loopback: their cosignatures on Rekor v2
checkpoints, the faults that withhold or spoil them, a split view a colluding quorum cosigns,
and the distributor they feed.

Cosignatures are checked here by a small verifier written from C2SP tlog-cosignature and
signed-note (vkeys), independent of the simulator's signing code and of the monitor's; it is
first shown to verify the real staging witnesses' cosignatures of a fixture.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from monitor.core.errors import ProofError
from monitor.sim.faults import Faults
from monitor.sim.run import RunningSim, SimConfig, start
from monitor.sim.witnesses import WitnessSet
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import leaf_hash, verify_consistency
from monitor.tlog.tileproofs import v2_consistency_proof
from tests.conftest import FIXTURES
from tests.simlog import Harness, harness, run, v2_client_at

NAMES = ("witness-a.sim.example", "witness-b.sim.example", "witness-c.sim.example")
A, B, C = NAMES
SHARD = "log2025-sim"

# published keys of the staging witnesses that cosigned the fixture (witness network facts)
STAGING_WITNESSES = (
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL",
    "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G",
)
STAGING_FIXTURE = (
    FIXTURES / "v2" / "conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json"
)


# --- an independent verifier (C2SP signed-note vkeys, tlog-cosignature cosignature/v1) --------


@dataclass(frozen=True)
class WitnessKey:
    name: str
    key_id: bytes
    public: ed25519.Ed25519PublicKey


def parse_vkey(vkey: str, sig_type: int = 0x04) -> WitnessKey:
    """``name+keyid+base64(type || key)``: split on the first two '+' (base64 has '+')."""
    name, key_id_hex, material_b64 = vkey.split("+", 2)
    material = base64.b64decode(material_b64, validate=True)
    assert material[0] == sig_type
    assert len(material) == 33
    key_id = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    assert key_id.hex() == key_id_hex
    return WitnessKey(name, key_id, ed25519.Ed25519PublicKey.from_public_bytes(material[1:]))


@dataclass(frozen=True)
class Cosigned:
    ok: bool
    time: int


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    body, _, sigs = note.partition("\n\n")
    assert sigs.endswith("\n")
    lines = []
    for line in sigs[:-1].split("\n"):
        assert line.startswith("\u2014 ")
        name, b64 = line[2:].rsplit(" ", 1)
        lines.append((name, base64.b64decode(b64, validate=True)))
    return body + "\n", lines


def cosignatures(note: str, keys: list[WitnessKey]) -> dict[str, Cosigned]:
    """The cosignature of every known witness on ``note``, verified; unknown lines ignored."""
    body, lines = split_note(note)
    out = {}
    for name, blob in lines:
        key = next((k for k in keys if k.name == name and k.key_id == blob[:4]), None)
        if key is None:
            continue
        assert len(blob) == 4 + 8 + 64
        t = int.from_bytes(blob[4:12], "big")
        message = f"cosignature/v1\ntime {t}\n{body}".encode()
        try:
            key.public.verify(blob[12:], message)
            out[name] = Cosigned(True, t)
        except InvalidSignature:
            out[name] = Cosigned(False, t)
    return out


def valid(note: str, keys: list[WitnessKey]) -> set[str]:
    return {n for n, c in cosignatures(note, keys).items() if c.ok}


def test_the_verifier_verifies_the_staging_witnesses_real_cosignatures() -> None:
    doc = json.loads(STAGING_FIXTURE.read_text())
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    note = entry["inclusionProof"]["checkpoint"]["envelope"]
    keys = [parse_vkey(v) for v in STAGING_WITNESSES]
    found = cosignatures(note, keys)
    assert set(found) == {k.name for k in keys}
    assert all(c.ok and c.time == 1778700214 for c in found.values())
    size = note.split("\n")[1]
    spoiled = note.replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)
    assert not any(c.ok for c in cosignatures(spoiled, keys).values())  # it can fail


# --- helpers -----------------------------------------------------------------------------------


def sim_keys(tmp_path: Path) -> list[WitnessKey]:
    return [parse_vkey(v) for v in (tmp_path / "witnesses.txt").read_text().splitlines()]


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with session.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def v2_note(h: Harness, view: str = "", **headers: str) -> str:
    status, text = await get(h.session, f"{h.sim.base_url}{view}/v2/{SHARD}/checkpoint", **headers)
    assert status == 200
    return text


def log_id(h: Harness) -> str:
    return hashlib.sha256(b"o:" + h.v2.log.key_name.encode()).hexdigest()


async def v1_head(h: Harness) -> str:
    """The Rekor v1 log's active tree head, as its API serves it."""
    status, text = await get(h.session, f"{h.sim.base_url}/api/v1/log")
    assert status == 200
    head: str = json.loads(text)["signedTreeHead"]
    return head


def origin_id(note: str) -> str:
    return hashlib.sha256(b"o:" + note.split("\n", maxsplit=1)[0].encode()).hexdigest()


async def dist(h: Harness, tail: str) -> tuple[int, str]:
    return await get(h.session, f"{h.sim.base_url}/distributor/v0/logs/{log_id(h)}/{tail}")


def size_root(note: str) -> tuple[int, bytes]:
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


# --- trust files -------------------------------------------------------------------------------


def test_trust_files_name_three_witnesses_and_a_two_of_three_policy(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            assert tuple(k.name for k in keys) == NAMES
            vkeys = (tmp_path / "witnesses.txt").read_text().splitlines()
            policy = (tmp_path / "witness-policy.txt").read_text().splitlines()
            body = [line.split() for line in policy if line and not line.startswith("#")]
            (log_line,) = [words for words in body if words[0] == "log"]
            log_key = parse_vkey(log_line[1], sig_type=0x01)
            assert log_key.name == h.v2.log.key_name  # the log's vkey is named by its origin
            assert log_line[2] == h.v2.log.base_url
            assert [w[1:] for w in body if w[0] == "witness"] == [
                [k.name, v] for k, v in zip(keys, vkeys, strict=True)
            ]
            assert ["group", "sim-witnesses", "2", *NAMES] in body
            assert body[-1] == ["quorum", "sim-witnesses"]

    run(go)


def test_witness_keys_are_seeded() -> None:
    one, again, other = (WitnessSet.seeded(s, 3, 2) for s in (5, 5, 6))
    assert one.witnesses_txt() == again.witnesses_txt() != other.witnesses_txt()
    with pytest.raises(Exception, match="quorum"):
        WitnessSet.seeded(5, 3, 4)


# --- cosigned checkpoints ----------------------------------------------------------------------


def test_v2_checkpoints_carry_three_valid_cosignatures_after_the_logs_signature(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            before = int(time.time())
            note = await v2_note(h)
            after = int(time.time())
            _, lines = split_note(note)
            assert [name for name, _ in lines] == [h.v2.log.key_name, *NAMES]
            found = cosignatures(note, keys)
            assert set(found) == set(NAMES)
            assert all(c.ok for c in found.values())
            assert all(before <= c.time <= after for c in found.values())
            cp = await h.v2.checkpoint()  # the log's own signature still verifies
            assert cp.raw == note
            assert cp.signers == (h.v2.log.key_name,)

    run(go)


def test_cosignature_time_is_the_simulators_clock(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            h.sim.state.witnesses = dataclasses.replace(
                h.sim.state.witnesses, clock=lambda: 1778700214.9
            )
            found = cosignatures(await v2_note(h), sim_keys(tmp_path))
            assert {c.time for c in found.values()} == {1778700214}
            assert all(c.ok for c in found.values())

    run(go)


def test_rekor_v1_checkpoints_carry_no_cosignature(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            status, text = await get(h.session, f"{h.sim.base_url}/api/v1/log")
            assert status == 200
            doc = json.loads(text)
            for head in [doc, *doc.get("inactiveShards", [])]:
                _, lines = split_note(head["signedTreeHead"])
                assert len(lines) == 1
            status, text = await get(h.session, f"{h.sim.base_url}/api/v1/log/entries?logIndex=3")
            (entry,) = json.loads(text).values()
            _, lines = split_note(entry["verification"]["inclusionProof"]["checkpoint"])
            assert len(lines) == 1

    run(go)


def test_withholding_all_or_named_cosignatures(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            await h.admin("faults", {"withhold_cosignatures": True})
            note = await v2_note(h)
            assert len(split_note(note)[1]) == 1
            assert cosignatures(note, keys) == {}
            await h.admin("faults", {"withhold_cosignatures": False, "withhold_cosigners": [B, C]})
            note = await v2_note(h)
            assert valid(note, keys) == {A}
            assert set(cosignatures(note, keys)) == {A}
            await h.admin("faults", {"withhold_cosigners": []})
            assert valid(await v2_note(h), keys) == set(NAMES)

    run(go)


def test_a_named_witness_cosigns_with_a_bad_signature(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            await h.admin("faults", {"bad_cosigners": [B]})
            note = await v2_note(h)
            found = cosignatures(note, keys)
            assert set(found) == set(NAMES)  # B's line is there, under its name and key ID
            assert {n for n, c in found.items() if not c.ok} == {B}
            await h.v2.checkpoint()  # the log's signature is not what is spoiled

    run(go)


def test_witness_faults_naming_unknown_witnesses_are_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            url = f"{h.sim.base_url}/admin/faults"
            for bad in (
                {"bad_cosigners": ["witness-z.sim.example"]},
                {"withhold_cosigners": A},
                {"split_cosigners": [A, "nobody"]},
                {"split_at": -1},
            ):
                async with h.session.post(url, json=bad) as resp:
                    assert resp.status == 400, bad
            state = await h.admin("state")
            assert state["faults"]["bad_cosigners"] == []
            assert state["witnesses"] == list(NAMES)

    run(go)


# --- a split view ------------------------------------------------------------------------------


async def consistency(
    h: Harness, base: str, old: SignedCheckpoint, new: SignedCheckpoint
) -> list[bytes]:
    return await v2_consistency_proof(v2_client_at(h, base), old.size, new)


def test_a_split_view_is_two_validly_cosigned_inconsistent_trees(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=600) as h:
            keys = sim_keys(tmp_path)
            honest_url = h.v2.http.base_url
            b_url = f"{h.sim.base_url}/view-b/v2/{SHARD}"
            view_b = v2_client_at(h, b_url)
            await h.admin("faults", {"split_at": 300})
            old_a, old_b = await h.v2.checkpoint(), await view_b.checkpoint()  # both log-signed
            by_header = await v2_note(h, **{"X-Sim-View": "b"})
            assert size_root(by_header) == (old_b.size, old_b.root_hash)
            assert old_a.origin == old_b.origin
            assert old_a.size == old_b.size == 600
            assert old_a.root_hash != old_b.root_hash
            for cp in (old_a, old_b):
                assert valid(cp.raw, keys) == set(NAMES)  # the colluding quorum cosigns both
            with pytest.raises(ProofError):  # two roots for one size
                verify_consistency(600, 600, [], old_a.root_hash, old_b.root_hash)

            await h.admin("append", {"v2": 40})
            new_a, new_b = await h.v2.checkpoint(), await view_b.checkpoint()
            assert new_a.size == new_b.size == 640
            # each view is append-only by itself (proofs from its own tiles)
            proof_a = await consistency(h, honest_url, old_a, new_a)
            verify_consistency(600, 640, proof_a, old_a.root_hash, new_a.root_hash)
            proof_b = await consistency(h, b_url, old_b, new_b)
            verify_consistency(600, 640, proof_b, old_b.root_hash, new_b.root_hash)
            # ... and neither extends the other
            with pytest.raises(ProofError):
                verify_consistency(600, 640, proof_a, old_b.root_hash, new_a.root_hash)
            with pytest.raises(ProofError):
                verify_consistency(600, 640, proof_b, old_a.root_hash, new_b.root_hash)

    run(go)


def test_view_b_serves_another_entry_that_hashes_to_its_tree(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path, entries=600) as h:
            view_b = v2_client_at(h, f"{h.sim.base_url}/view-b/v2/{SHARD}")
            await h.admin("faults", {"split_at": 300})
            honest_leaves, b_leaves = await h.v2.tile(0, 1), await view_b.tile(0, 1)
            differ = [i for i in range(256) if honest_leaves[i] != b_leaves[i]]
            assert differ == [300 - 256]
            honest_body = (await h.v2.entry_bundle(1))[44]
            b_body = (await view_b.entry_bundle(1))[44]
            assert honest_body != b_body
            assert leaf_hash(honest_body) == honest_leaves[44]
            assert leaf_hash(b_body) == b_leaves[44]

    run(go)


def test_view_b_needs_a_split_and_the_header_says_b(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            honest = size_root(await v2_note(h))
            assert size_root(await v2_note(h, "/view-b")) == honest  # no split: one view
            await h.admin("faults", {"split_at": 10})
            assert size_root(await v2_note(h, **{"X-Sim-View": "a"})) == honest
            assert size_root(await v2_note(h, **{"X-Sim-View": "b"})) != honest

    run(go)


def test_witnesses_can_cosign_only_the_honest_view(tmp_path: Path) -> None:
    async def go() -> None:
        async with harness(tmp_path) as h:
            keys = sim_keys(tmp_path)
            await h.admin("faults", {"split_at": 10, "split_cosigners": []})
            assert valid(await v2_note(h), keys) == set(NAMES)
            assert cosignatures(await v2_note(h, "/view-b"), keys) == {}
            await h.admin("faults", {"split_cosigners": [C]})
            assert valid(await v2_note(h, "/view-b"), keys) == {C}

    run(go)


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
