"""tlog-monitor inspect: every real fixture, each input form, and user mistakes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from monitor.cli import main
from tests.conftest import FIXTURES, PROD_LOGINFO, STAGING_ROOT, evidence_files

ENTRY_FILES = [p for p in evidence_files() if "loginfo" not in p.name]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_every_fixture_inspects(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--trusted-root", str(STAGING_ROOT)] if "staging" in path.name else []
    code, out, _ = _run(capsys, *root, "--jsonl", str(path))
    assert code == 0, out
    doc = json.loads(out)
    assert doc["result"] == "record"
    assert doc["known"] is True
    assert doc["signers"]
    assert doc["log"].endswith(("sigstore.dev", "sigstage.dev"))
    code, text, _ = _run(capsys, *root, str(path))
    assert code == 0
    assert text.startswith(f"{path}: ")


def test_json_field_names_are_stable(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "v1-bundles" / "gh-cli.sigstore-js-2.1.0.intoto.sigstore.json"
    _, out, _ = _run(capsys, "--jsonl", "--body", str(path))
    doc = json.loads(out)
    assert set(doc) == {
        "path", "result", "log", "index", "body_sha256", "leaf_hash", "body", "kind",
        "api_version", "known", "integrated_time", "signers", "artifact_digests",
        "payload_hash", "envelope_hash", "payload_type", "subjects", "subjects_source", "notes",
    }  # fmt: skip
    signer = doc["signers"][0]
    assert set(signer) == {
        "type", "sans", "issuer", "extensions", "serial", "not_before", "not_after",
        "issuer_dn", "subject_dn", "fingerprint", "chain", "key",
    }  # fmt: skip
    assert signer["chain"] == "verified"
    assert doc["subjects"][0]["name"] == "pkg:npm/sigstore@2.1.0"
    assert doc["subjects_source"] == "envelope"
    body = base64.b64decode(doc["body"])
    assert doc["leaf_hash"] == hashlib.sha256(b"\x00" + body).hexdigest()
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_raw_body_json_and_base64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads((FIXTURES / "v1-api" / "logentry.jar.prod.json").read_text())
    (entry,) = doc.values()
    body = base64.b64decode(entry["body"])
    raw = tmp_path / "body.json"
    raw.write_bytes(body)
    b64 = tmp_path / "body.b64"
    b64.write_text(entry["body"] + "\n")
    for path in (raw, b64):
        code, out, _ = _run(capsys, "--jsonl", str(path))
        assert code == 0
        assert json.loads(out)["kind"] == "jar"


def test_json_is_one_document_and_jsonl_one_entry_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundles = sorted((FIXTURES / "v1-bundles").glob("*.json"))[:2]
    junk = tmp_path / "junk"
    junk.write_bytes(b"not anything")
    paths = [*map(str, bundles), str(junk)]
    code, out, err = _run(capsys, "--json", *paths)
    assert code == 1  # one file could not be inspected
    assert err == ""
    doc = json.loads(out)
    assert [e["path"] for e in doc["entries"]] == paths[:2]
    assert [u["path"] for u in doc["unreadable"]] == [str(junk)]
    code, out, err = _run(capsys, "--jsonl", *paths)
    assert code == 1
    assert [json.loads(line)["path"] for line in out.splitlines()] == paths[:2]
    assert "cannot inspect" in err
    with pytest.raises(SystemExit) as exited:
        main(["inspect", "--json", "--jsonl", paths[0]])
    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_loginfo_and_garbage_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, str(PROD_LOGINFO))
    assert code == 1
    assert "holds no entries" in err
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01 not anything")
    code, _, err = _run(capsys, str(junk))
    assert code == 1
    assert "cannot inspect" in err
    assert "Traceback" not in err


def test_malformed_body_is_shown_not_crashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "bad.json"
    body.write_text('{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{}}')
    code, out, _ = _run(capsys, str(body))
    assert code == 1
    assert "MALFORMED hashedrekord 0.0.1" in out
    assert "body.spec.signature: missing" in out


def test_a_reader_that_goes_away_is_no_error() -> None:
    """`tlog-monitor inspect ... | head -1`: no traceback, exit 0."""
    import subprocess
    import sys

    bundles = Path(__file__).parent / "fixtures" / "v1-bundles"
    paths = sorted(str(p) for p in bundles.glob("*.json"))
    assert len(paths) > 5
    proc = subprocess.Popen(
        # far more than a pipe holds, so the writer is still writing when the reader leaves
        [str(Path(sys.executable).parent / "tlog-monitor"), "inspect", "--jsonl", *paths * 20],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    proc.wait(60)
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err
