"""``check-config``: a summary without secrets, every error at once (exit status 2), logs
checked against the trust root, and the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main
from tests.config_support import (
    CONFIG_DIR,
    EXAMPLE_ENV,
    EXAMPLE_SECRETS,
    MINIMAL,
    MISTAKES,
    SECRET,
    SECRET_ENV_LINE,
    TOKEN_HASH,
)
from tests.conftest import PROD_ROOT, STAGING_ROOT

EXE = Path(sys.executable).parent / "tlog-monitor"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check-config", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_config_summarises_without_secrets(
    issue_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOC_WEBHOOK_SECRET", SECRET)
    code, out, err = _run(capsys, str(issue_file))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"config: {issue_file}: OK"
    assert lines[1].startswith(
        "trust: trusted root default (Sigstore production), signing config default "
        "(Sigstore production); no refresh;"
    )
    assert "logs: 2" in lines
    assert (
        "  rekor: api v1, https://rekor.sigstore.dev; start tip, poll every 30s, 8 requests/s"
        in lines
    )
    assert (
        "  rekor-v2: api v2, discover v2 shards from the signing config: "
        "https://log2025-1.rekor.sigstore.dev; start resume, poll every 30s, 8 requests/s" in lines
    )
    db = f"sqlite+aiosqlite:///{issue_file.parent}/data/monitor.db"
    assert f"database: {db}; migrations applied at start" in lines
    assert (
        "server: listen 127.0.0.1:9464; tokens: responders (read+write); metrics need a "
        "token, health public" in lines
    )
    assert "rules: 4" in lines
    assert "  acme-release-signing: severity high" in lines
    assert "    match:  ext:source-repository-owner-uri = https://github.com/acme" in lines
    assert (
        "    expect: issuer = https://token.actions.githubusercontent.com; san = "
        "https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*; "
        "ext:runner-environment = github-hosted" in lines
    )
    assert r"    match:  san = *@acme.com | regex:ops-[a-z]+@acme\.io" in lines
    assert "  offline-root-key: severity critical" in lines
    assert "sinks: 1" in lines
    assert (
        "  soc: webhook to soc.example.com, min severity medium, signed with the secret from "
        "$SOC_WEBHOOK_SECRET" in lines
    )
    assert SECRET not in out
    assert TOKEN_HASH not in out
    assert "/hooks/tlog" not in out


def test_check_config_of_the_example_shows_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(key, value)
    code, out, _ = _run(capsys, str(CONFIG_DIR / "monitor.example.yaml"))
    assert code == 0
    assert "database: postgresql+asyncpg://monitor:***@db.internal:5432/tlog" in out
    assert "  chat: slack to hooks.slack.com (url from $SLACK_WEBHOOK_URL)" in out
    for secret in EXAMPLE_SECRETS:
        assert secret not in out


def test_check_config_default_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(CONFIG_DIR.parent)
    code, out, _ = _run(capsys)
    assert code == 0
    assert out.startswith("config: config/monitor.yaml: OK\n")
    assert "  rekor-v2: api v2, discover v2 shards from the signing config: https://" in out


def test_check_config_reports_every_error_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SOC_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "bad.yaml"
    path.write_text(MISTAKES)
    code, out, err = _run(capsys, str(path))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"tlog-monitor: error: {path}: 14 errors"
    assert len(lines) == 15
    assert all(line.startswith(f"{path}:") for line in lines[1:])
    assert f"{path}:10: logs[0].requests_per_second: must be greater than 0" in lines
    assert "Traceback" not in err


def test_check_config_checks_logs_against_the_trust_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"trust:\n  trusted_root: {STAGING_ROOT}\n"
        "logs:\n"
        "  - {name: prod, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        "  - name: prod-v2\n    api: v2\n    url: https://log2025-1.rekor.sigstore.dev\n"
        "  - {name: shards, api: v2, discover: true}\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    first, *lines = err.splitlines()
    assert first == f"tlog-monitor: error: {path}: 3 errors"
    assert [line.split(", so its")[0] for line in lines] == [
        f"{path}:4: logs[0].url: not a log of the trusted root ({STAGING_ROOT})",
        f"{path}:7: logs[1].url: not a log of the trusted root ({STAGING_ROOT})",
        f"{path}:8: logs[2].discover: the signing config (the default one) lists no current "
        "v2 shard",
    ]
    assert "checkpoints cannot be verified; it lists https://rekor.sigstage.dev" in lines[0]


def test_check_config_refuses_a_log_key_without_validity_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = json.loads(PROD_ROOT.read_text(encoding="utf-8"))
    for tlog in root["tlogs"]:
        del tlog["publicKey"]["validFor"]["start"]
    root_path = tmp_path / "root.json"
    root_path.write_text(json.dumps(root))
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"trust:\n  trusted_root: {root_path}\n"
        "logs:\n"
        "  - {name: prod, api: v1, url: 'https://rekor.sigstore.dev'}\n"
        "  - {name: shards, api: v2, discover: true}\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    first, *lines = err.splitlines()
    assert first == f"tlog-monitor: error: {path}: 3 errors"
    undated = (
        "the trusted root gives the key of {} no validity start (publicKey.validFor.start): "
        f"a key without one is not trusted ({root_path})"
    )
    assert lines == [
        f"{path}:4: logs[0].url: " + undated.format("https://rekor.sigstore.dev"),
        f"{path}:5: logs[1].discover: " + undated.format("https://log2025-1.rekor.sigstore.dev"),
        f"{path}:5: logs[1].discover: the signing config (the default one) lists no current "
        "v2 shard",
    ]


def test_check_config_api_must_match_the_signing_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "logs:\n  - name: v2-as-v1\n    api: v1\n    url: https://log2025-1.rekor.sigstore.dev\n"
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert err == (
        f"tlog-monitor: error: {path}:3: logs[0].api: the signing config says "
        "https://log2025-1.rekor.sigstore.dev speaks v2\n"
    )


def test_check_config_unreadable_trust_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "root.json"
    broken.write_text("{}")
    path = tmp_path / "monitor.yaml"
    path.write_text(f"trust:\n  trusted_root: {broken}\n" + MINIMAL)
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert err.startswith(f"tlog-monitor: error: {path}:1: trust: {broken}: not a valid")


@pytest.mark.slow
def test_console_script(tmp_path: Path, issue_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SOC_WEBHOOK_SECRET"}
    ok = subprocess.run(
        [EXE, "check-config", issue_file],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "SOC_WEBHOOK_SECRET": SECRET},
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"config: {issue_file}: OK\n")
    assert SECRET not in ok.stdout + ok.stderr
    assert TOKEN_HASH not in ok.stdout + ok.stderr

    missing = subprocess.run(
        [EXE, "check-config", issue_file], capture_output=True, text=True, check=False, env=env
    )
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert missing.stderr == (
        f"tlog-monitor: error: {issue_file}:{SECRET_ENV_LINE}: alerts.sinks[0].secret_env: "
        "environment variable SOC_WEBHOOK_SECRET is not set\n"
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text(MISTAKES)
    many = subprocess.run(
        [EXE, "check-config", bad], capture_output=True, text=True, check=False, env=env
    )
    assert many.returncode == 2
    assert f"{bad}: 14 errors" in many.stderr
    assert "Traceback" not in many.stderr

    nofile = subprocess.run(
        [EXE, "check-config", tmp_path / "nope.yaml"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert nofile.returncode == 2
    assert "cannot read the configuration" in nofile.stderr
    assert "Traceback" not in nofile.stderr
