"""The simulator's witnesses, over real HTTP on loopback: their cosignatures on Rekor v2
checkpoints, the faults that withhold or spoil them, and a split view a colluding quorum
cosigns. Cosignatures are checked by the independent verifier of ``witness_support``, first
shown to verify the real staging witnesses' cosignatures of a fixture.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from monitor.core.errors import ProofError
from monitor.sim.witnesses import WitnessSet
from monitor.tlog.checkpoint import SignedCheckpoint
from monitor.tlog.merkle import leaf_hash, verify_consistency
from monitor.tlog.tileproofs import v2_consistency_proof
from tests.simlog import Harness, harness, run, v2_client_at
from tests.witness_support import (
    NAMES,
    SHARD,
    STAGING_FIXTURE,
    STAGING_WITNESSES,
    A,
    B,
    C,
    cosignatures,
    get,
    parse_vkey,
    sim_keys,
    size_root,
    split_note,
    v2_note,
    valid,
)


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
