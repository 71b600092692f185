"""The offline demo as a newcomer runs it: ``tlog-monitor demo`` in a child process (in a
network namespace with nothing but loopback, where ``unshare`` allows it), verified alerts for
each planted kind within a minute, a clean stop on SIGINT and SIGTERM; its configuration
passes check-config; its receiver rejects what is not signed by the sink's secret."""

from __future__ import annotations

import asyncio
import functools
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml

from monitor.alerts.deliver import post
from monitor.alerts.events import AlertFinding, decode_finding
from monitor.alerts.payloads import test_message, webhook
from monitor.config.load import load_settings
from monitor.config.models import SinkSettings
from monitor.config.webhook_secrets import parse_secrets
from monitor.core.errors import ConfigError
from monitor.core.findings import Finding, FindingKind, Severity, Unmet, dedup_key
from monitor.demo.layout import Layout
from monitor.demo.plants import release_key_fingerprint
from monitor.demo.receiver import AlertReceiver
from monitor.demo.run import write_trust
from monitor.storage.findings_store import StoredFinding
from tests.simlog import run

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")
DEMO_CONFIG = Path(__file__).parent.parent / "config" / "demo.yaml"
SECRET = "whsec_dGxvZy1tb25pdG9yIGRlbW86IG5vdCBhIHNlY3JldA=="

# one line per planted kind: rule, kind and severity as config/demo.yaml has them
EXPECTED_ALERTS = {
    "app-release-signing": re.compile(
        r"\[signature ok\] ALERT HIGH unexpected_signer \| rule app-release-signing \| "
        r"rekor(-v2)? #\d+ \| san is https://github\.com/tlog-demo/app/\.github/workflows/"
        r"debug\.yml@refs/heads/patch-1 "
    ),
    "release-key": re.compile(
        r"\[signature ok\] ALERT CRITICAL watched_use \| rule release-key \| rekor(-v2)? #\d+ \| "
        r"key_fingerprint sha256:[0-9a-f]{64}"
    ),
    "app-image": re.compile(
        r"\[signature ok\] ALERT HIGH unexpected_signer \| rule app-image \| rekor #\d+ \| "
        r"build-signer-uri is https://github\.com/tlog-demo/website/"
    ),
}


def _free_block() -> int:
    """A port P with P, P+1 and P+2 free (the API, the simulator, the receiver)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port > 65530:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port + 1))
                b.bind(("127.0.0.1", port + 2))
        except OSError:
            continue
        return port
    raise AssertionError("no block of three free ports")


@functools.cache
def _isolated() -> bool:
    """Whether a user and network namespace (loopback only) can be made here."""
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    done = subprocess.run(
        ["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    return done.returncode == 0


def _offline(argv: list[str]) -> list[str]:
    """``argv`` in a network namespace of its own with only loopback up: no route to the
    internet, so any attempt to reach it fails. ``exec`` keeps the child's process id, so
    signals reach the demo itself."""
    if not _isolated():
        return argv
    return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


async def _healthz(pid: int, port: int) -> str:
    """GET /healthz from inside the demo's network: the status, or why there was none."""
    code = (
        "import urllib.request, urllib.error\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
        "except OSError as e:\n"
        "    print('unreachable', type(e).__name__)\n"
    )
    argv = [sys.executable, "-c", code]
    if _isolated():
        argv = ["nsenter", "-t", str(pid), "-U", "-n", "--preserve-credentials", *argv]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return out.decode().strip()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo writes under .demo/ in the working directory: make that a temporary one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def _demo(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *_offline([TLOG_MONITOR, "demo", "--config", str(DEMO_CONFIG), *args]),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _line(proc: asyncio.subprocess.Process, deadline: float) -> str:
    assert proc.stdout is not None
    left = deadline - time.monotonic()
    raw = await asyncio.wait_for(proc.stdout.readline(), max(left, 0.01))
    if not raw:
        _, err = await proc.communicate()
        raise AssertionError(f"the demo ended early ({proc.returncode}): {err.decode()}")
    return raw.decode().rstrip("\n")


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """End a demo that a failed test leaves running."""
    if proc.returncode is None:
        proc.kill()
    await proc.communicate()


async def _printed_commands_work(lines: list[str], cwd: Path) -> list[str]:
    """Run the tlog-monitor commands the banner prints, exactly as printed, from where the
    demo runs: each must succeed and find what the demo planted (or the open queue)."""
    ran = []
    for line in lines[:25]:
        if " --config " not in line or "tlog-monitor" not in line:
            continue  # the banner's prose may hold an apostrophe
        argv = shlex.split(line.strip())
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (line, err.decode())
        assert "Traceback" not in err.decode()
        text = out.decode()
        if argv[1] == "history":
            assert "patch-1" in text, text  # the unexpected signer the demo planted
        else:
            assert "unexpected_signer" in text, text
            assert "expected_use" not in text  # records are not in the open queue
        ran.append(argv[1])
    return ran


@pytest.mark.slow
def test_demo_shows_verified_alerts_of_every_kind_and_stops_on_sigint(tmp_path: Path) -> None:
    port = _free_block()

    async def body() -> None:
        started = time.monotonic()
        # --duration: a safety net; the test stops it with SIGINT long before
        proc = await _demo(tmp_path, "--port", str(port), "--duration", "300")
        seen: dict[str, float] = {}
        lines: list[str] = []
        try:
            deadline = started + 60
            while len(seen) < len(EXPECTED_ALERTS):
                try:
                    line = await _line(proc, deadline)
                except TimeoutError:
                    raise AssertionError(
                        f"after 60 s only {sorted(seen)}:\n" + "\n".join(lines)
                    ) from None
                lines.append(line)
                for rule, pattern in EXPECTED_ALERTS.items():
                    if pattern.search(line):
                        seen.setdefault(rule, time.monotonic() - started)
            health = await _healthz(proc.pid, port)
            commands = await _printed_commands_work(lines, tmp_path)
        except BaseException:
            await _reap(proc)
            raise
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        rest, err = await asyncio.wait_for(proc.communicate(), 20)
        stopping = time.monotonic() - sent
        out = "\n".join(lines) + "\n" + rest.decode()
        errors = err.decode()
        assert proc.returncode == 0, errors
        assert stopping < 10
        assert "Traceback" not in errors + out
        assert "[REJECTED]" not in out
        assert "demo stopped:" in out
        banner = "\n".join(lines[:20])
        assert f"http://127.0.0.1:{port}/metrics" in banner
        assert (
            f"curl -H 'Authorization: Bearer demo-token' 'http://127.0.0.1:{port}/api/v1/entries?san="
            in banner
        )
        assert commands == ["history", "findings"]
        assert max(seen.values()) < 60, seen
        assert health == "200", health  # the API and /healthz, served by the monitor
        print(
            f"\nfirst alert of each kind, seconds after start: {seen}; stopped in {stopping:.1f}s"
        )

    run(body)


@pytest.mark.slow
def test_demo_stops_by_itself_and_on_sigterm(tmp_path: Path) -> None:
    port = _free_block()

    async def body() -> None:
        proc = await _demo(tmp_path, "--port", str(port), "--duration", "2")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert "demo stopped:" in out.decode()
        assert "Traceback" not in err.decode()

        proc = await _demo(tmp_path, "--port", str(port))
        try:
            deadline = time.monotonic() + 60
            while "Ctrl-C stops" not in await _line(proc, deadline):
                pass
        except BaseException:
            await _reap(proc)
            raise
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert "demo stopped:" in out.decode()
        assert "Traceback" not in err.decode()

    run(body)


def test_demo_says_which_port_is_taken(tmp_path: Path) -> None:
    port = _free_block()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        done = subprocess.run(
            [TLOG_MONITOR, "demo", "--config", str(DEMO_CONFIG), "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"port {port + 1} (for the simulator) is in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".demo" / "monitor.db").exists()


def test_demo_config_passes_check_config(tmp_path: Path) -> None:
    """As the configuration says, from the top of a checkout: its paths are relative to it."""
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.yaml"
    shutil.copy(DEMO_CONFIG, config)
    written = subprocess.run(
        [TLOG_MONITOR, "demo", "--trust-only"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    for cwd in (tmp_path, tmp_path / "config"):  # relative to the file, not to the caller
        checked = subprocess.run(
            [TLOG_MONITOR, "check-config", str(config)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
        assert f"config: {config}: OK" in checked.stdout
        assert "rules: 3" in checked.stdout
        assert checked.stderr == ""  # rules and a sink: nothing left undone


def test_watched_key_in_the_config_is_the_one_the_demo_plants() -> None:
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    (rule,) = [r for r in doc["watch"] if r["name"] == "release-key"]
    assert rule["match"]["key_fingerprint"] == release_key_fingerprint()
    (sink,) = doc["alerts"]["sinks"]
    assert sink["secret"] == SECRET


def test_demo_runs_on_its_own_database_whatever_the_config_names(in_tmp: Path) -> None:
    """The demo deletes its database at every start: the copy it runs names its own, never
    one the given file names."""
    layout = Layout()
    write_trust(layout.port)
    layout.fresh()
    theirs = in_tmp / "theirs.yaml"
    theirs.write_text(
        DEMO_CONFIG.read_text().replace("../.demo/monitor.db", "data/monitor.db"),
        encoding="utf-8",
    )
    copy = layout.config_for(theirs)
    settings = load_settings(copy)
    assert settings.database.url == f"sqlite+aiosqlite:///{(in_tmp / '.demo/monitor.db')}"
    assert settings.trust.trusted_root == str(in_tmp / ".demo/trust/trusted_root.json")
    assert layout.check(settings, theirs) == parse_secrets(SECRET)
    assert not (in_tmp / "data").exists()

    theirs.write_text(DEMO_CONFIG.read_text().replace("/hook", "/elsewhere"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"theirs\.yaml does not fit the demo: alerts\.sinks"):
        layout.check(load_settings(layout.config_for(theirs)), theirs)


def test_moved_ports_keep_the_config_consistent(in_tmp: Path) -> None:
    layout = Layout(20000)
    write_trust(layout.port)
    layout.fresh()
    moved = layout.config_for(DEMO_CONFIG)
    assert moved.resolve() == in_tmp / ".demo" / "demo.yaml"
    settings = load_settings(moved)
    assert str(settings.server.listen) == "127.0.0.1:20000"
    assert [log.url for log in settings.logs] == [
        "http://127.0.0.1:20001",
        "http://127.0.0.1:20001/v2/log2025-sim",
    ]
    layout.check(settings, moved)  # the simulator's and the receiver's ports moved too


def _finding(san: str) -> AlertFinding:
    kind = FindingKind.UNEXPECTED_SIGNER
    finding = Finding(
        kind=kind,
        severity=Severity.HIGH,
        dedup_key=dedup_key(kind, "app-release-signing", "rekor", 7),
        rule="app-release-signing",
        log="rekor",
        index=7,
        unmet=(Unmet("san", ("https://github.com/tlog-demo/app/*",), (san,)),),
        created_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    return decode_finding(StoredFinding(finding, None, None, None, None).to_json())


def test_receiver_checks_signatures_drops_repeats_and_escapes_log_values() -> None:
    lines: list[str] = []
    receiver = AlertReceiver(parse_secrets(SECRET), lines.append)
    hostile = "https://evil.example/\x1b[2J\x1b]0;pwned\x07"
    other = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    async def body() -> list[int | None]:
        port = await receiver.start("127.0.0.1", 0)
        raw = {"name": "demo-receiver", "type": "webhook", "url": f"http://127.0.0.1:{port}/hook"}
        ours = SinkSettings.model_validate({**raw, "secret": SECRET})
        forger = SinkSettings.model_validate({**raw, "secret": other})
        now = int(time.time())
        alert = webhook(ours, "trigger", [_finding(hostile)], timestamp=now)
        sends = [
            (ours, alert),
            (ours, alert),  # a repeat: answered, not shown again
            (forger, webhook(forger, "trigger", [_finding("x")], timestamp=now)),
            (ours, webhook(ours, "trigger", [_finding("y")], timestamp=now - 3600)),  # stale
            (ours, test_message(ours, now=datetime.now(UTC))),
        ]
        try:
            async with aiohttp.ClientSession() as session:
                return [(await post(session, sink, msg)).status for sink, msg in sends]
        finally:
            await receiver.stop()

    assert run(body) == [200, 200, 401, 401, 200]
    assert len(lines) == 4, lines  # the alert once, two rejections, the test
    alert, forged, stale, test = lines
    assert (
        "[signature ok] ALERT HIGH unexpected_signer | rule app-release-signing | rekor #7" in alert
    )
    assert "\x1b" not in alert
    assert "\x07" not in alert
    assert "san is https://evil.example/\\x1b[2J\\x1b]0;pwned\\x07" in alert
    assert "[REJECTED]" in forged
    assert "[REJECTED]" in stale
    assert "TEST alert from sink demo-receiver" in test
    assert (receiver.findings, receiver.rejected, receiver.deliveries) == (1, 2, 3)
