"""verify-bundle on every real fixture, and on every kind of tampering."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from tests.conftest import FIXTURES, PROD_LOGINFO, evidence_files, trust_args

Doc = dict[str, Any]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify-bundle", *args])
    out = capsys.readouterr().out
    return code, out


@pytest.mark.parametrize("path", evidence_files(), ids=lambda p: p.name)
def test_every_fixture_verifies(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, *trust_args(path), str(path))
    assert code == 0, out
    assert out.startswith("OK    "), out
    assert out.count("\n") == 1


def test_all_fixtures_in_one_call(capsys: pytest.CaptureFixture[str]) -> None:
    prod = [str(p) for p in evidence_files() if "staging" not in p.name]
    code, out = run_cli(capsys, "--log-info", str(PROD_LOGINFO), *prod)
    assert code == 0, out
    assert out.count("OK    ") == len(prod) >= 20


def test_staging_fixture_fails_against_production_root(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = FIXTURES / "v2" / "conformance.rekor2-dsse-happy-path.staging-witnessed.sigstore.json"
    code, out = run_cli(capsys, str(path))
    assert code == 1
    assert "log failed: log ID" in out
    assert "is not in the trusted root" in out


# --- tampering -------------------------------------------------------------------------------


def _entry(doc: Doc) -> tuple[Doc, Doc, bool]:
    """(entry, inclusion proof, hex-encoded?) of a bundle, v2 entry or v1 LogEntry document."""
    if "verificationMaterial" in doc:
        tle = doc["verificationMaterial"]["tlogEntries"][0]
        return tle, tle["inclusionProof"], False
    if "canonicalizedBody" in doc:
        return doc, doc["inclusionProof"], False
    (entry,) = doc.values()
    return entry, entry["verification"]["inclusionProof"], True


def _flip_b64(text: str, byte: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _flip_hex(text: str) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[0] ^= 0x01
    return raw.hex()


def _body_key(entry: Doc) -> str:
    return "body" if "body" in entry else "canonicalizedBody"


def _checkpoint(proof: Doc) -> str:
    cp = proof["checkpoint"]
    return cp["envelope"] if isinstance(cp, dict) else str(cp)


def _set_checkpoint(proof: Doc, text: str) -> None:
    if isinstance(proof["checkpoint"], dict):
        proof["checkpoint"]["envelope"] = text
    else:
        proof["checkpoint"] = text


def _bump(value: Any) -> Any:
    return str(int(value) + 1) if isinstance(value, str) else value + 1


def tamper_body(doc: Doc) -> None:
    entry, _, _ = _entry(doc)
    key = _body_key(entry)
    entry[key] = _flip_b64(entry[key], byte=len(base64.b64decode(entry[key])) // 2)


def tamper_proof_hash(doc: Doc) -> None:
    _, proof, hexed = _entry(doc)
    h = proof["hashes"]
    h[0] = _flip_hex(h[0]) if hexed else _flip_b64(h[0])


def tamper_leaf_index(doc: Doc) -> None:
    _, proof, _ = _entry(doc)
    proof["logIndex"] = _bump(proof["logIndex"])


def tamper_tree_size(doc: Doc) -> None:
    _, proof, _ = _entry(doc)
    proof["treeSize"] = _bump(proof["treeSize"])


def tamper_root(doc: Doc) -> None:
    _, proof, hexed = _entry(doc)
    proof["rootHash"] = _flip_hex(proof["rootHash"]) if hexed else _flip_b64(proof["rootHash"])


def tamper_checkpoint_text(doc: Doc) -> None:
    _, proof, _ = _entry(doc)
    origin, size, rest = _checkpoint(proof).split("\n", 2)
    _set_checkpoint(proof, f"{origin}\n{int(size) + 1}\n{rest}")


def tamper_checkpoint_signature(doc: Doc) -> None:
    _, proof, _ = _entry(doc)
    text, sigs = _checkpoint(proof).rsplit("\n\n", 1)
    first, *others = sigs.split("\n")
    name, b64 = first.rsplit(" ", 1)
    # flip a bit after the 4-byte key ID, in the signature proper
    _set_checkpoint(proof, text + "\n\n" + "\n".join([f"{name} {_flip_b64(b64, 10)}", *others]))


def tamper_log_id(doc: Doc) -> None:
    entry, _, hexed = _entry(doc)
    if hexed:
        entry["logID"] = _flip_hex(entry["logID"])
    else:
        entry["logId"]["keyId"] = _flip_b64(entry["logId"]["keyId"])


# Each tamper and the checks of which at least one must fail. A bigger tree size may leave the
# proof path unchanged (a leaf far from the right edge), so then only the agreement catches it.
TAMPERS: dict[str, tuple[Callable[[Doc], None], set[str]]] = {
    "body": (tamper_body, {"inclusion-proof"}),
    "proof-hash": (tamper_proof_hash, {"inclusion-proof"}),
    "leaf-index": (tamper_leaf_index, {"inclusion-proof"}),
    "tree-size": (tamper_tree_size, {"inclusion-proof", "checkpoint-agreement"}),
    "root": (tamper_root, {"inclusion-proof"}),
    "checkpoint-text": (tamper_checkpoint_text, {"checkpoint-signature"}),
    "checkpoint-signature": (tamper_checkpoint_signature, {"checkpoint-signature"}),
    "log-id": (tamper_log_id, {"log"}),
}

ENTRY_FILES = [p for p in evidence_files() if "loginfo" not in p.name]


def _write(tmp_path: Path, doc: Doc) -> Path:
    out = tmp_path / "tampered.json"
    out.write_text(json.dumps(doc))
    return out


def _failed_checks(out: str) -> list[str]:
    return [part.split(" failed:")[0].strip() for part in out.split("; ") if " failed:" in part]


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_tampering_fails_with_the_right_check(
    path: Path, tamper: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fn, expected = TAMPERS[tamper]
    doc = json.loads(path.read_text())
    fn(doc)
    code, out = run_cli(capsys, *trust_args(path), str(_write(tmp_path, doc)))
    assert code == 1, out
    assert out.startswith("FAIL  "), out
    failed = [c.rsplit(": ", 1)[-1] for c in _failed_checks(out)]
    assert expected & set(failed), out


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_tampered_global_index_fails(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The global index is bound by the SET (v1), equals the leaf index (v2), or is checked
    against a verified LogInfo's shard layout (v1 without SET)."""
    doc = json.loads(path.read_text())
    entry, _, _ = _entry(doc)
    entry["logIndex"] = _bump(entry["logIndex"])
    has_set = bool((entry.get("inclusionPromise") or {}).get("signedEntryTimestamp")) or bool(
        entry.get("verification", {}).get("signedEntryTimestamp")
    )
    v1_prod = path.parent.name.startswith("v1-") and "staging" not in path.name
    extra = ["--log-info", str(PROD_LOGINFO)] if v1_prod and not has_set else []
    code, out = run_cli(capsys, *trust_args(path), *extra, str(_write(tmp_path, doc)))
    assert code == 1, out
    expected = "signed-entry-timestamp" if has_set else "log-index"
    assert f"{expected} failed" in out, out


def _has_set(path: Path) -> bool:
    entry, _, _ = _entry(json.loads(path.read_text()))
    promise = entry.get("inclusionPromise") or entry.get("verification") or {}
    return bool(promise.get("signedEntryTimestamp"))


SET_FILES = [p for p in ENTRY_FILES if _has_set(p)]


def test_set_fixtures_are_the_v1_ones() -> None:
    # every v1 fixture but the one whose SET was stripped carries a SignedEntryTimestamp
    assert len(SET_FILES) == len([p for p in ENTRY_FILES if "v1-" in p.parent.name]) - 1


@pytest.mark.parametrize("path", SET_FILES, ids=lambda p: p.name)
def test_tampered_set_or_time_fails(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(path.read_text())
    for field in ("signedEntryTimestamp", "integratedTime"):
        d = copy.deepcopy(doc)
        e, _, _ = _entry(d)
        if field == "integratedTime":
            e[field] = _bump(e[field])
        else:
            p = e.get("inclusionPromise") or e["verification"]
            p[field] = _flip_b64(p[field], 12)
        code, out = run_cli(capsys, *trust_args(path), str(_write(tmp_path, d)))
        assert code == 1, out
        assert "signed-entry-timestamp failed" in out, out


def test_missing_checkpoint_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    doc = json.loads(path.read_text())
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
    code, out = run_cli(capsys, str(_write(tmp_path, doc)))
    assert code == 1
    assert "checkpoint-signature failed: no checkpoint" in out


def test_missing_inclusion_proof_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    doc = json.loads(path.read_text())
    del doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    code, out = run_cli(capsys, str(_write(tmp_path, doc)))
    assert code == 1
    assert "inclusion-proof failed: no inclusion proof" in out


def test_checkpoint_from_another_tree_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A genuine checkpoint of a different tree (right key, wrong tree) must not vouch for a
    proof: the agreement check catches it."""
    path = FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    other = (
        FIXTURES
        / "checkpoints"
        / "rekor-v1.prod.tree3904496407287907110.size4163431.RECONSTRUCTED.txt"
    ).read_text()
    doc = json.loads(path.read_text())
    doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] = (
        other
    )
    code, out = run_cli(capsys, str(_write(tmp_path, doc)))
    assert code == 1
    assert "checkpoint-agreement failed: checkpoint tree size 4163431" in out


def test_loginfo_tampering_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(PROD_LOGINFO.read_text())
    doc["inactiveShards"][0]["treeSize"] += 1
    code, out = run_cli(capsys, str(_write(tmp_path, doc)))
    assert code == 1
    assert "checkpoint-agreement failed" in out
    doc = json.loads(PROD_LOGINFO.read_text())
    doc["treeID"] = "1"
    code, out = run_cli(capsys, str(_write(tmp_path, doc)))
    assert code == 1
    assert "is not tree 1" in out


def test_bad_log_info_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    assert main(["verify-bundle", "--log-info", str(bundle), str(bundle)]) == 2
    assert "is not a LogInfo" in capsys.readouterr().err


# --- user mistakes: clear lines, never a traceback --------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "(top): expected an object, got a list"),
        (b"{}", "not a Sigstore bundle"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'{"mediaType": "x", "verificationMaterial": {}}', "unsupported bundle media type"),
    ],
)
def test_files_that_cannot_be_checked_exit_2(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    code, out = run_cli(capsys, str(f))
    assert code == 2
    assert out.startswith(f"ERROR {f}: ")
    assert message in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["verificationMaterial"].update(tlogEntries=[]),
            "verificationMaterial.tlogEntries: none: the bundle has no transparency-log entry",
        ),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0].update(logIndex="-1"),
            "verificationMaterial.tlogEntries[0].logIndex: expected a decimal integer, got '-1'",
        ),
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0].update(canonicalizedBody="@"),
            "verificationMaterial.tlogEntries[0].canonicalizedBody: not valid base64",
        ),
    ],
    ids=["no-entries", "negative-index", "bad-base64"],
)
def test_malformed_fields_of_a_known_form_fail(
    edit: Callable[[Doc], None], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(
        (
            FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
        ).read_text()
    )
    edit(doc)
    path = _write(tmp_path, doc)
    code, out = run_cli(capsys, str(path))
    assert code == 1
    assert out == f"FAIL  {path}: malformed: {message}\n"


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, str(tmp_path / "nope.json"), str(tmp_path))
    assert code == 2
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("ERROR ") and ": cannot read: " in line for line in lines)


def test_a_failure_outranks_what_could_not_be_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = FIXTURES / "v1-api" / "logentry.jar.prod.json"
    doc = json.loads(good.read_text())
    tamper_body(doc)
    failed = _write(tmp_path, doc)
    missing = tmp_path / "nope.json"
    assert run_cli(capsys, str(good))[0] == 0
    assert run_cli(capsys, str(good), str(missing))[0] == 2
    assert run_cli(capsys, str(missing), str(failed), str(good))[0] == 1


def test_bad_trusted_root_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root.json"
    root.write_text("{")
    code = main(["verify-bundle", "--trusted-root", str(root), str(PROD_LOGINFO)])
    assert code == 2
    assert str(root) in capsys.readouterr().err


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "v1-api" / "logentry.jar.prod.json"
    code, out = run_cli(capsys, "--jsonl", str(path))
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    assert doc["form"] == "Rekor v1 LogEntry"
    names = [c["name"] for c in doc["entries"][0]["checks"]]
    assert names[:3] == ["log", "entry-id", "inclusion-proof"]
    assert "signed-entry-timestamp" in names
    # --json: one document for every file, with the exit status
    missing = tmp_path / "missing.json"
    code, out = run_cli(capsys, "--json", str(path), str(missing))
    assert code == 2
    whole = json.loads(out)
    assert [f["status"] for f in whole["files"]] == ["ok", "error"]
    assert whole["exit"] == 2


@pytest.mark.slow
def test_console_script_exit_codes_without_traceback(tmp_path: Path) -> None:
    good = FIXTURES / "v1-api" / "logentry.jar.prod.json"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    exe = Path(sys.executable).parent / "tlog-monitor"

    def run(*args: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "verify-bundle", *args], capture_output=True, text=True, check=False
        )

    ok = run(good)
    assert ok.returncode == 0, ok.stderr
    unchecked = run(good, bad)
    assert unchecked.returncode == 2
    assert f"ERROR {bad}: not JSON" in unchecked.stdout
    tampered = json.loads(good.read_text())
    tamper_body(tampered)
    failed = run(_write(tmp_path, tampered), bad)
    assert failed.returncode == 1
    usage = run()
    assert usage.returncode == 2
    for result in (unchecked, failed, usage):
        assert "Traceback" not in result.stdout + result.stderr
