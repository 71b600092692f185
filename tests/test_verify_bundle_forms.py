"""verify-bundle on what other Sigstore implementations and real tools write: other clients'
test bundles, proto field names, a bare LogEntryAnon, cosign's rekor bundle, SET-only
evidence (accepted on the log's promise, refused with --require-proof, completed with --online
from a log on loopback), and the exit status that says which."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from tests.conftest import FIXTURES, STAGING_ROOT, evidence_files, trust_args

OTHERS = FIXTURES / "other-implementations"
SCAFFOLDING = OTHERS / "sigstore-go.trusted-root.scaffolding.json"
PROMISE = "[promise only: signed entry timestamp"
EXE = Path(sys.executable).parent / "tlog-monitor"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify-bundle", *args])
    return code, capsys.readouterr().out


# (file, trusted root or None for production, expected: ok | promise | fail:<check> | malformed)
OTHER_CASES = [
    ("sigstore-go.othername.sigstore.json", SCAFFOLDING, "ok"),
    ("sigstore-go.dsse.sigstore.json", None, "promise"),
    ("sigstore-go.dsse-2sigs.sigstore.json", None, "promise"),
    ("sigstore-go.public-key-validity.sigstore.json", None, "malformed"),
    ("sigstore-python.Python-3.12.5.tgz.sigstore.json", None, "promise"),
    ("sigstore-python.bundle_no_cert_v1.sigstore.json", None, "promise"),
    (
        "sigstore-python.bundle_no_checkpoint.staging.sigstore.json",
        STAGING_ROOT,
        "fail:checkpoint-signature",
    ),
    ("sigstore-python.bundle.staging.sigstore.json", STAGING_ROOT, "ok"),
    ("sigstore-python.bundle_v3_alt.staging.sigstore.json", STAGING_ROOT, "ok"),
    ("sigstore-python.a.dsse.staging-rekor-v2.sigstore.json", STAGING_ROOT, "ok"),
    ("sigstore-python.tsa-bundle.staging.sigstore.json", STAGING_ROOT, "ok"),
    ("cosign.SIGNATURE_SPEC.rekor-bundle.EXTRACTED.json", None, "promise"),
]


def test_every_other_implementation_file_is_a_case() -> None:
    on_disk = {p.name for p in OTHERS.glob("*.json")} - {SCAFFOLDING.name}
    assert on_disk == {name for name, _, _ in OTHER_CASES}


def _root_args(root: Path | None) -> list[str]:
    return ["--trusted-root", str(root)] if root is not None else []


@pytest.mark.parametrize(("name", "root", "expected"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_other_implementations(
    name: str, root: Path | None, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = OTHERS / name
    code, out = run_cli(capsys, *_root_args(root), str(path))
    if expected in ("ok", "promise"):
        assert code == 0, out
        assert out.startswith("OK    "), out
        assert (PROMISE in out) is (expected == "promise"), out
        strict, strict_out = run_cli(capsys, "--require-proof", *_root_args(root), str(path))
        assert strict == (1 if expected == "promise" else 0), strict_out
        if expected == "promise":
            assert "--require-proof asks for one" in strict_out, strict_out
    elif expected == "malformed":
        assert code == 1
        assert ": malformed: " in out, out
    else:
        assert code == 1, out
        assert f"{expected.removeprefix('fail:')} failed: " in out, out


def test_pod_named_checkpoint_says_who_signed(capsys: pytest.CaptureFixture[str]) -> None:
    """A scaffolding Rekor v1 signs as its pod: verified by the log's key hint and key."""
    path = OTHERS / "sigstore-go.othername.sigstore.json"
    code, out = run_cli(capsys, "-v", "--trusted-root", str(SCAFFOLDING), str(path))
    assert code == 0, out
    assert (
        "checkpoint-signature: signed by rekor.rekor-system.172.18.255.1.sslip.io's key as "
        "rekor-00001-deployment-56bf7777c9-jds5x" in out
    )
    # the name is not what is trusted: the key is. Another root's key does not verify it
    code, out = run_cli(capsys, str(path))
    assert code == 1
    assert "log failed: log ID f6fb357e" in out


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


# --- proto field names, LogEntryAnon, rekor bundles ----------------------------------------------


def _snake(doc: Any) -> Any:
    def name(key: str) -> str:
        if key in ("SignedEntryTimestamp", "Payload"):
            return key
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)

    if isinstance(doc, dict):
        return {name(k): _snake(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_snake(v) for v in doc]
    return doc


PROTO_FILES = [
    p for p in evidence_files() if p.parent.name in ("v1-bundles", "v2") and "tle" not in p.name
]


@pytest.mark.parametrize("path", PROTO_FILES, ids=lambda p: p.name)
def test_bundles_with_proto_field_names(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snake = _snake(json.loads(path.read_text()))
    assert "verification_material" in snake
    code, out = run_cli(capsys, *trust_args(path), str(_write(tmp_path / "snake.json", snake)))
    assert code == 0, out
    # the same checks as the original spelling
    _, original = run_cli(capsys, *trust_args(path), str(path))
    assert out.split(": ", 1)[1] == original.split(": ", 1)[1]


def test_a_bundle_spelling_a_field_twice_is_malformed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / "v1-bundles" / "conformance.happy-path-v0.3.hashedrekord.sigstore.json"
    doc = json.loads(path.read_text())
    tle = doc["verificationMaterial"]["tlogEntries"][0]
    tle["log_index"] = tle["logIndex"]
    code, out = run_cli(capsys, str(_write(tmp_path / "twice.json", doc)))
    assert code == 1
    assert "logIndex: given twice (as logIndex and as log_index)" in out


def test_log_entry_anon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A LogEntry without its UUID key (what ``rekor-cli get --format json`` style tools and
    LogEntryAnon-typed APIs hand out) verifies the same, minus the UUID check."""
    doc = json.loads((FIXTURES / "v1-api" / "logentry.jar.prod.json").read_text())
    (anon,) = doc.values()
    code, out = run_cli(capsys, "--jsonl", str(_write(tmp_path / "anon.json", anon)))
    assert code == 0, out
    result = json.loads(out)
    assert result["form"] == "Rekor v1 LogEntryAnon"
    names = [c["name"] for c in result["entries"][0]["checks"]]
    assert "entry-id" not in names
    assert {"inclusion-proof", "checkpoint-signature", "signed-entry-timestamp"} <= set(names)
    # stripped of its proof, it rests on its SET
    del anon["verification"]["inclusionProof"]
    code, out = run_cli(capsys, str(_write(tmp_path / "anon-set.json", anon)))
    assert code == 0, out
    assert f"{PROMISE}, no inclusion proof]" in out


def test_rekor_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = OTHERS / "cosign.SIGNATURE_SPEC.rekor-bundle.EXTRACTED.json"
    code, out = run_cli(capsys, "-v", str(path))
    assert code == 0, out
    assert out.startswith(f"OK    {path}: cosign rekor bundle: rekor.sigstore.dev index 5179")
    assert "ok   signed-entry-timestamp: verified" in out
    assert "ok   log-key-validity: 2021-06-22T21:08:05+00:00" in out
    doc = json.loads(path.read_text())
    for field, value in (("integratedTime", 1624396086), ("logIndex", 5180)):
        changed = json.loads(json.dumps(doc))
        changed["Payload"][field] = value
        code, out = run_cli(capsys, str(_write(tmp_path / f"{field}.json", changed)))
        assert code == 1
        assert "signed-entry-timestamp failed: signature over (body, time, log ID, index)" in out
    changed = json.loads(json.dumps(doc))
    changed["Payload"]["logID"] = "00" * 32
    code, out = run_cli(capsys, str(_write(tmp_path / "logid.json", changed)))
    assert code == 1
    assert "log failed: log ID 0000" in out


def test_set_only_bundle_of_v02_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The promise alone is enough for v0.1 only: a v0.2 bundle must carry the proof."""
    doc = json.loads((OTHERS / "sigstore-go.dsse.sigstore.json").read_text())
    doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
    code, out = run_cli(capsys, str(_write(tmp_path / "v02.json", doc)))
    assert code == 1
    assert (
        "inclusion-proof failed: no inclusion proof: nothing ties the entry to a signed tree; "
        "bundles v0.2 and later must carry one" in out
    )


def test_tampered_set_only_bundle_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads((OTHERS / "sigstore-python.Python-3.12.5.tgz.sigstore.json").read_text())
    tle = doc["verificationMaterial"]["tlogEntries"][0]
    body = bytearray(base64.b64decode(tle["canonicalizedBody"]))
    body[100] ^= 1
    tle["canonicalizedBody"] = base64.b64encode(bytes(body)).decode()
    code, out = run_cli(capsys, str(_write(tmp_path / "t.json", doc)))
    assert code == 1
    assert "signed-entry-timestamp failed" in out
    assert "inclusion-proof failed" in out


# --- --online: the proof fetched from the log -------------------------------------------------


@dataclass
class Sim:
    base_url: str
    root: Path
    config: Path
    tmp: Path

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.base_url}{path}") as r:
            data: bytes = r.read()
            return data

    def faults(self, faults: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.base_url}/admin/faults",
            data=json.dumps(faults).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            assert r.status == 200

    def verify(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        return run_cli(
            capsys, "--trusted-root", str(self.root), "--signing-config", str(self.config), *args
        )


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    out = tmp_path_factory.mktemp("sim")
    proc = subprocess.Popen(
        [EXE, "sim", "--entries", "300", "--seed", "11", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "signing_config.json").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.05)
        time.sleep(0.1)
        root = json.loads((out / "trusted_root.json").read_text())
        base = root["tlogs"][0]["baseUrl"]
        yield Sim(base, out / "trusted_root.json", out / "signing_config.json", out)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def _set_only_forms(sim: Sim, index: int) -> dict[str, Any]:
    """A LogEntry the simulator serves, as three SET-only forms real tools write."""
    ((key, entry),) = json.loads(sim.get(f"/api/v1/log/entries?logIndex={index}")).items()
    set_b64 = entry["verification"]["signedEntryTimestamp"]
    body = json.loads(base64.b64decode(entry["body"]))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "tlogEntries": [
                {
                    "logIndex": str(entry["logIndex"]),
                    "logId": {"keyId": base64.b64encode(bytes.fromhex(entry["logID"])).decode()},
                    "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
                    "integratedTime": str(entry["integratedTime"]),
                    "inclusionPromise": {"signedEntryTimestamp": set_b64},
                    "canonicalizedBody": entry["body"],
                }
            ]
        },
    }
    rekor_bundle = {
        "SignedEntryTimestamp": set_b64,
        "Payload": {k: entry[k] for k in ("body", "integratedTime", "logIndex", "logID")},
    }
    log_entry = {key: {**entry, "verification": {"signedEntryTimestamp": set_b64}}}
    return {"bundle": bundle, "rekor-bundle": rekor_bundle, "log-entry": log_entry}


@pytest.mark.parametrize("form", ["bundle", "rekor-bundle", "log-entry"])
def test_online_completes_a_promise(
    form: str, sim: Sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _set_only_forms(sim, 123)[form]
    path = _write(tmp_path / f"{form}.json", doc)
    code, out = sim.verify(capsys, str(path))
    assert code == 0, out
    assert PROMISE in out
    code, out = sim.verify(capsys, "--require-proof", str(path))
    assert code == 1, out
    code, out = sim.verify(capsys, "--online", str(path))
    assert code == 0, out
    assert PROMISE not in out
    for check in ("inclusion-proof", "checkpoint-signature", "checkpoint-agreement", "online"):
        assert check in out, out
    # the online verdict is a full one: --require-proof is satisfied by it
    code, out = sim.verify(capsys, "--online", "--require-proof", str(path))
    assert code == 0, out


def test_online_with_a_lying_or_absent_log(
    sim: Sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forms = _set_only_forms(sim, 150)
    path = _write(tmp_path / "bundle.json", forms["bundle"])
    try:
        # the log serves another body at the promised index
        sim.faults({"tamper": [150]})
        code, out = sim.verify(capsys, "--online", str(path))
        assert code == 1, out
        assert "online failed: " in out
        assert "serves another entry at index 150" in out
        # the log says it has no entry there
        sim.faults({"tamper": [], "omit_always": [150]})
        code, out = sim.verify(capsys, "--online", str(path))
        assert code == 1, out
        assert "has no entry at index 150, which it promised" in out
        # the log cannot be reached: nothing was checked online, exit 2, the offline verdict kept
        sim.faults({"omit_always": [], "rate_5xx": 1.0})
        code, out = sim.verify(capsys, "--online", str(path))
        assert code == 2, out
        assert out.startswith(f"ERROR {path}: Sigstore bundle v0.1: --online: cannot fetch entry")
    finally:
        sim.faults({"tamper": [], "omit_always": [], "rate_5xx": 0.0})
