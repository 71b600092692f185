"""Every real checkpoint in tests/fixtures opens under the right trust root, and only under it.

Sources: checkpoints/*.txt (file names carry tree ID and size), the checkpoint of every tlog
entry in the bundle / TransparencyLogEntry fixtures, the v1 LogEntry responses and the v1
LogInfo response (active and inactive shards). "staging" in a file name means the staging
trusted root; everything else is production.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from monitor.core.errors import NoteError
from monitor.tlog.checkpoint import SignedCheckpoint, open_checkpoint, v1_tree_id
from monitor.tlog.note import SignedNote
from monitor.trust import TrustRoot, load_trust_root

FIXTURES = Path(__file__).parent / "fixtures"
TRUST = FIXTURES / "trust"
PROD_V1_KEY_NAME = "rekor.sigstore.dev"
PROD_V2_KEY_NAME = "log2025-1.rekor.sigstore.dev"
_CHECKPOINT_FILE = re.compile(r"rekor-v1\.prod\.tree([0-9]+)\.size([0-9]+)\..*txt")
_TIMESTAMP_EXT = re.compile(r"Timestamp: [1-9][0-9]*")


@cache
def prod_root() -> TrustRoot:
    return load_trust_root(
        str(TRUST / "trusted_root.prod.json"),
        str(TRUST / "signing_config_rekor_v2.v0.2.prod.json"),
    )


@cache
def staging_root() -> TrustRoot:
    return load_trust_root(str(TRUST / "trusted_root.staging.json"), None)


@dataclass(frozen=True)
class FixtureCheckpoint:
    """A signed checkpoint found in a fixture, with what the surrounding data says about it."""

    id: str
    raw: str
    staging: bool
    size: int
    root_hash: bytes
    origin: str | None = None  # expected origin, when the fixture says
    log_id: bytes | None = None  # the log that the fixture says produced it
    extensions: tuple[str, ...] | None = None  # expected extension lines, when known

    def trust_root(self) -> TrustRoot:
        return staging_root() if self.staging else prod_root()

    def other_root(self) -> TrustRoot:
        return prod_root() if self.staging else staging_root()


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _from_checkpoint_files() -> list[FixtureCheckpoint]:
    out = []
    for path in sorted((FIXTURES / "checkpoints").glob("*.txt")):
        m = _CHECKPOINT_FILE.fullmatch(path.name)
        assert m, f"unexpected checkpoint fixture name {path.name}"
        raw = path.read_text(encoding="utf-8")
        root = base64.b64decode(raw.split("\n")[2], validate=True)
        ext = ("Timestamp: 1697034484441201852",) if "timestamp-ext" in path.name else ()
        out.append(
            FixtureCheckpoint(
                id=path.name,
                raw=raw,
                staging=False,
                size=int(m.group(2)),
                root_hash=root,
                origin=f"{PROD_V1_KEY_NAME} - {m.group(1)}",
                extensions=ext,
            )
        )
    return out


def _from_tlog_entry(entry_id: str, staging: bool, entry: Any) -> FixtureCheckpoint:
    """A protobuf-JSON TransparencyLogEntry (bundle tlogEntries[] or a v2 create response)."""
    proof = entry["inclusionProof"]
    return FixtureCheckpoint(
        id=entry_id,
        raw=str(proof["checkpoint"]["envelope"]),
        staging=staging,
        size=int(proof["treeSize"]),
        root_hash=base64.b64decode(proof["rootHash"], validate=True),
        log_id=base64.b64decode(entry["logId"]["keyId"], validate=True),
    )


def _from_bundles_and_entries() -> list[FixtureCheckpoint]:
    out = []
    paths = sorted((FIXTURES / "v1-bundles").glob("*.json")) + sorted(
        (FIXTURES / "v2").glob("*.json")
    )
    for path in paths:
        doc = _load(path)
        staging = "staging" in path.name
        if "verificationMaterial" in doc:
            entries = doc["verificationMaterial"]["tlogEntries"]
            assert entries, path.name
            for i, entry in enumerate(entries):
                out.append(_from_tlog_entry(f"{path.name}#tlogEntries[{i}]", staging, entry))
        else:
            out.append(_from_tlog_entry(path.name, staging, doc))
    return out


def _from_v1_log_entries() -> list[FixtureCheckpoint]:
    out = []
    for path in sorted((FIXTURES / "v1-api").glob("logentry.*.json")):
        for uuid, entry in _load(path).items():
            proof = entry["verification"]["inclusionProof"]
            out.append(
                FixtureCheckpoint(
                    id=f"{path.name}#{uuid[:16]}",
                    raw=str(proof["checkpoint"]),
                    staging="staging" in path.name,
                    size=int(proof["treeSize"]),
                    root_hash=bytes.fromhex(proof["rootHash"]),
                    log_id=bytes.fromhex(entry["logID"]),
                )
            )
    return out


def _from_v1_log_info() -> list[FixtureCheckpoint]:
    path = FIXTURES / "v1-api" / "loginfo.prod.RECONSTRUCTED.json"
    info = _load(path)
    heads = [("active", info)] + [
        (f"inactiveShards[{i}]", shard) for i, shard in enumerate(info["inactiveShards"])
    ]
    return [
        FixtureCheckpoint(
            id=f"{path.name}#{where}",
            raw=str(head["signedTreeHead"]),
            staging=False,
            size=int(head["treeSize"]),
            root_hash=bytes.fromhex(head["rootHash"]),
            origin=f"{PROD_V1_KEY_NAME} - {head['treeID']}",
        )
        for where, head in heads
    ]


CHECKPOINT_FILES = _from_checkpoint_files()
EMBEDDED = _from_bundles_and_entries() + _from_v1_log_entries() + _from_v1_log_info()
ALL = CHECKPOINT_FILES + EMBEDDED


def _ids(cases: list[FixtureCheckpoint]) -> list[str]:
    return [c.id for c in cases]


def _open_and_check(case: FixtureCheckpoint) -> SignedCheckpoint:
    trust = case.trust_root()
    cp = open_checkpoint(case.raw, trust.note_verifiers())
    assert cp.size == case.size
    assert cp.root_hash == case.root_hash
    assert cp.raw == case.raw
    if case.origin is not None:
        assert cp.origin == case.origin
    if case.extensions is not None:
        assert cp.checkpoint.extensions == case.extensions
    # the only extension Rekor ever wrote is the pre-v1.3.5 "Timestamp: <nanos>" line
    assert all(_TIMESTAMP_EXT.fullmatch(e) for e in cp.checkpoint.extensions)
    # the parsed body re-serialises to exactly the signed text
    assert cp.checkpoint.to_text() == SignedNote.from_text(case.raw).text
    # exactly one log of the trust root signed it, and the origin belongs to that log
    logs = [log for log in trust.logs if log.key_name in cp.signers]
    assert len(logs) == 1
    assert cp.signers == (logs[0].key_name,)
    assert logs[0].origin_matches(cp.origin)
    return cp


def test_fixture_inventory() -> None:
    """Guard against a glob silently matching nothing."""
    assert len(CHECKPOINT_FILES) == 5
    assert len(EMBEDDED) == 17 + 6 + 2 + 3  # v1 bundles, v2 files, LogEntries, LogInfo
    assert sum(c.staging for c in ALL) == 3
    assert len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", ALL, ids=_ids(ALL))
def test_checkpoint_opens_under_its_trust_root(case: FixtureCheckpoint) -> None:
    _open_and_check(case)


@pytest.mark.parametrize("case", EMBEDDED, ids=_ids(EMBEDDED))
def test_embedded_checkpoint_opens_with_its_logs_key(case: FixtureCheckpoint) -> None:
    """Select the log the way a verifier does (logId, or the v1 origin) and use only its key."""
    trust = case.trust_root()
    if case.log_id is not None:
        log = trust.log_by_id(case.log_id)
    else:
        assert case.origin is not None
        candidates = [log for log in trust.logs if log.origin_matches(case.origin)]
        assert len(candidates) == 1
        log = candidates[0]
    assert log is not None
    cp = open_checkpoint(case.raw, [log.note_verifier()])
    assert cp.signers == (log.key_name,)
    assert log.origin_matches(cp.origin)
    assert (cp.size, cp.root_hash) == (case.size, case.root_hash)
    if v1_tree_id(cp.origin) is not None:
        assert cp.origin.startswith(f"{log.key_name} - ")
        assert log.log_id[:4] == log.checkpoint_key_id
    else:
        assert cp.origin == log.key_name


@pytest.mark.parametrize("case", ALL, ids=_ids(ALL))
def test_checkpoint_fails_under_the_other_trust_root(case: FixtureCheckpoint) -> None:
    with pytest.raises(NoteError, match="no signature from a trusted key") as info:
        open_checkpoint(case.raw, case.other_root().note_verifiers())
    assert info.value.check == "checkpoint-signature"


@pytest.mark.parametrize("case", ALL, ids=_ids(ALL))
def test_tampered_checkpoint_fails(case: FixtureCheckpoint) -> None:
    first, size, rest = case.raw.split("\n", 2)
    tampered = "\n".join([first, str(int(size) + 1), rest])
    with pytest.raises(NoteError, match="does not verify") as info:
        open_checkpoint(tampered, case.trust_root().note_verifiers())
    assert info.value.check == "checkpoint-signature"


@pytest.mark.parametrize("case", ALL, ids=_ids(ALL))
def test_checkpoint_opens_from_bytes(case: FixtureCheckpoint) -> None:
    cp = open_checkpoint(case.raw.encode("utf-8"), case.trust_root().note_verifiers())
    assert (cp.size, cp.root_hash, cp.raw) == (case.size, case.root_hash, case.raw)


def test_timestamp_extension_kept() -> None:
    (case,) = [c for c in CHECKPOINT_FILES if "timestamp-ext" in c.id]
    cp = _open_and_check(case)
    assert cp.checkpoint.extensions == ("Timestamp: 1697034484441201852",)
    assert cp.origin == "rekor.sigstore.dev - 2605736670972794746"
    assert cp.size == 37795272
    with_ext = [c.id for c in EMBEDDED if "\nTimestamp: " in c.raw]
    assert len(with_ext) == 5


def test_staging_witness_cosignatures_ignored() -> None:
    (case,) = [c for c in EMBEDDED if c.id.startswith("conformance.rekor2-dsse-happy-path")]
    note = SignedNote.from_text(case.raw)
    names = [s.name for s in note.signatures]
    assert names == [
        "log2025-alpha3.rekor.sigstage.dev",
        "witness.stagemole.eu",
        "staging.witness.transparency.goog/ring-any-bells",
        "witness.navigli.sunlight.geomys.org",
    ]
    cp = open_checkpoint(case.raw, staging_root().note_verifiers())
    assert cp.signers == ("log2025-alpha3.rekor.sigstage.dev",)
    assert cp.origin == "log2025-alpha3.rekor.sigstage.dev"
    assert (cp.size, cp.root_hash) == (case.size, case.root_hash)
    # a witness line alone is not enough
    witness_only = note.text + "\n" + case.raw.split("\n\n", 1)[1].split("\n", 1)[1]
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_checkpoint(witness_only, staging_root().note_verifiers())


def test_prod_v2_checkpoints_signed_by_log2025_1() -> None:
    v2 = [c for c in EMBEDDED if not c.staging and c.raw.startswith(PROD_V2_KEY_NAME + "\n")]
    assert len(v2) == 4
    for case in v2:
        cp = _open_and_check(case)
        assert cp.signers == (PROD_V2_KEY_NAME,)
        assert cp.origin == PROD_V2_KEY_NAME
        assert SignedNote.from_text(case.raw).signatures[0].key_id.hex() == "cf119915"


def test_prod_v1_checkpoints_use_log_id_prefix_as_key_id() -> None:
    v1 = [c for c in ALL if not c.staging and c.raw.startswith(PROD_V1_KEY_NAME + " - ")]
    assert len(v1) == 5 + 17 + 1 + 3
    for case in v1:
        (sig,) = SignedNote.from_text(case.raw).signatures
        assert sig.name == PROD_V1_KEY_NAME
        assert sig.key_id.hex() == "c0d23d6a"


def test_loginfo_and_logentry_agree_with_checkpoint_files() -> None:
    by_id = {c.id: c for c in ALL}
    final_shard1 = by_id["rekor-v1.prod.tree3904496407287907110.size4163431.RECONSTRUCTED.txt"]
    final_shard2 = by_id["rekor-v1.prod.tree2605736670972794746.size117740831.RECONSTRUCTED.txt"]
    active = by_id["rekor-v1.prod.tree1193050959916656506.size3068558843.RECONSTRUCTED.txt"]
    info = "loginfo.prod.RECONSTRUCTED.json#"
    assert by_id[info + "inactiveShards[0]"].raw == final_shard1.raw
    assert by_id[info + "inactiveShards[1]"].raw == final_shard2.raw
    assert by_id[info + "active"].raw == active.raw
    (jar,) = [c for c in EMBEDDED if c.id.startswith("logentry.jar.prod.json#")]
    # the jar entry was proven against the frozen shard's final tree head
    assert (jar.size, jar.root_hash) == (final_shard1.size, final_shard1.root_hash)
    assert open_checkpoint(jar.raw, prod_root().note_verifiers()).origin == final_shard1.origin
