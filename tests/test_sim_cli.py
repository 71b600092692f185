"""``tlog-monitor sim`` as a user runs it, and its output checked by the monitor's own
offline verifier: LogEntry inclusion proofs, checkpoints and SETs, v2 checkpoints."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.entries import parse_entry
from monitor.entries.record import SigningRecord
from monitor.trust import load_trust_root

EXE = Path(sys.executable).parent / "tlog-monitor"


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "simulator did not start"
        time.sleep(0.05)


@pytest.mark.slow
def test_sim_command_serves_what_its_trust_files_describe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = subprocess.Popen(
        [EXE, "sim", "--entries", "300", "--seed", "9", "--out", str(tmp_path), "--rate", "20"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(tmp_path / "signing_config.json", proc)
        time.sleep(0.2)
        trust = load_trust_root(
            str(tmp_path / "trusted_root.json"), str(tmp_path / "signing_config.json")
        )
        v1 = next(log for log in trust.logs if log.api_version == 1)
        (v2,) = trust.v2_shards()
        # a LogEntry served by the simulator verifies offline like a production one
        with urllib.request.urlopen(f"{v1.base_url}/api/v1/log/entries?logIndex=200") as r:
            entry = r.read()
        saved = tmp_path / "entry.json"
        saved.write_bytes(entry)
        code = main(
            [
                "verify-bundle",
                "--trusted-root", str(tmp_path / "trusted_root.json"),
                "--signing-config", str(tmp_path / "signing_config.json"),
                str(saved),
            ]
        )  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out
        assert "signed-entry-timestamp" in out
        # and parses into a record whose certificate chains to the simulator's CA
        (value,) = json.loads(entry).values()
        record = parse_entry(base64.b64decode(value["body"]), log="sim", index=200)
        assert isinstance(record, SigningRecord)
        # the v2 checkpoint is signed by the shard's key, origin = URL without scheme
        with urllib.request.urlopen(f"{v2.base_url}/checkpoint") as r:
            note = r.read().decode()
        assert note.split("\n")[0] == v2.key_name
        # the log grows at --rate
        with urllib.request.urlopen(f"{v1.base_url}/admin/state") as r:
            first = json.loads(r.read())["v1"]["size"]
        time.sleep(0.6)
        with urllib.request.urlopen(f"{v1.base_url}/admin/state") as r:
            assert json.loads(r.read())["v1"]["size"] > first
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err


def test_sim_command_rejects_bad_options(tmp_path: Path) -> None:
    bad = subprocess.run(
        [EXE, "sim", "--out", str(tmp_path), "--faults", '{"nope": 1}'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "unknown fault 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad_name = subprocess.run(
        [EXE, "sim", "--out", str(tmp_path), "--v1-key-name", "rekor+1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad_name.returncode == 2
    assert "v1 key name 'rekor+1'" in bad_name.stderr
    assert "Traceback" not in bad_name.stderr


def test_sim_on_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [EXE, "sim", "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path / "trust")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"tlog-monitor: error: cannot start the simulator on 127.0.0.1:{port}: "
        "Address already in use\n"
    )
