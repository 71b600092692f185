"""One command-line grammar: every command described and every option explained; ``--config``
wherever a configuration is read and ``--db`` wherever a database is; ``--json`` (one
document) on every command that prints results, ``--jsonl`` where lines are documented; one
default page size for the CLI and the API, and a ``--limit`` that states its real cap. And
what the reading commands need of a configuration: its ``database`` section only, with paths
relative to the file."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from multidict import MultiDict

from monitor.api.params import Params
from monitor.api.router import limit_of
from monitor.cli.main import build_parser, main
from monitor.storage import Batch, Store
from monitor.storage.paging import DEFAULT_PAGE_SIZE, MAX_PAGE
from tests.storage_support import cert_record, finding_for, run

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")
REPO = Path(__file__).resolve().parents[1]

# the commands that print results (servers and the demo print logs, not results)
RESULTS = {
    "once",
    "backfill",
    "check-config",
    "findings",
    "history",
    "inspect",
    "verify-bundle",
    "alerts test",
    "alerts dead",
    "alerts replay",
    "db upgrade",
    "db downgrade",
    "db current",
}
JSON_LINES = {"inspect", "verify-bundle", "alerts dead"}  # --jsonl, documented per command
READS_A_DATABASE = {
    "findings",
    "history",
    "images list",
    "alerts dead",
    "alerts replay",
    "db upgrade",
    "db downgrade",
    "db current",
}


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command (``alerts dead``), with its parser."""

    def walk(prefix: str, parser: argparse.ArgumentParser) -> Iterator[tuple[str, Any]]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield prefix, parser
            return
        for name, child in subs[0].choices.items():
            yield from walk(f"{prefix} {name}".strip(), child)

    yield from walk("", build_parser())


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_every_command_has_a_description_and_every_option_help() -> None:
    found = dict(commands())
    assert {"run", "sim", "demo", *RESULTS} <= set(found)
    missing = []
    for name, parser in found.items():
        if not (parser.description or "").strip():
            missing.append(f"{name}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    # the groups of commands are described too
    top = build_parser()
    (group,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for name in ("alerts", "db"):
        assert (group.choices[name].description or "").strip(), name


def test_json_on_every_command_that_prints_results() -> None:
    found = dict(commands())
    for name in RESULTS:
        opts = options(found[name])
        assert "--json" in opts, name
        assert ("--jsonl" in opts) == (name in JSON_LINES), name
        if name in JSON_LINES:
            assert "JSON Lines" in str(opts["--jsonl"].help)
        assert "one JSON document" in str(opts["--json"].help), name


def test_one_flag_for_a_config_and_one_for_a_database() -> None:
    for name, parser in commands():
        opts = options(parser)
        assert "--url" not in opts, name
        config = [a for a in parser._actions if a.dest == "config"]
        if config:
            assert config[0].option_strings == ["--config"], name
        assert ("--db" in opts) == (name in READS_A_DATABASE), name
        if name in READS_A_DATABASE:
            assert "--config" in opts, name


def test_page_size_is_the_apis_and_limit_states_its_cap() -> None:
    empty = Params(MultiDict[str](), ("limit",))
    assert limit_of(empty, 1000) == DEFAULT_PAGE_SIZE
    for name, parser in commands():
        limit = options(parser).get("--limit")
        if limit is None:
            continue
        assert limit.default == DEFAULT_PAGE_SIZE, name
        assert f"default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE}" in str(limit.help), name


# -- check-config ------------------------------------------------------------------------------


def test_check_config_takes_the_file_either_way_and_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = str(REPO / "config" / "monitor.yaml")
    for argv in ([shipped], ["--config", shipped], [shipped, "--config", shipped]):
        assert main(["check-config", *argv]) == 0
        out, err = capsys.readouterr()
        assert out.startswith(f"config: {shipped}: OK\n")
        # no rules and no sinks in the ready default: said once each, as warnings
        assert err.splitlines() == [
            "warning: no watch rules: the logs are verified, but no entry is looked for as "
            "yours (add rules under watch)",
            "warning: no alert sinks: findings (a log caught lying included) are stored and "
            "served by the API and `tlog-monitor findings`, and nobody is told (add "
            "alerts.sinks)",
        ]
    assert main(["check-config", "--json", "--config", shipped]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["config"], doc["ok"], doc["rules"], doc["sinks"]) == (shipped, True, [], [])
    assert len(doc["warnings"]) == 2
    assert [log["name"] for log in doc["logs"]] == ["rekor", "rekor-v2"]

    other = tmp_path / "other.yaml"
    assert main(["check-config", shipped, "--config", str(other)]) == 2
    assert "two files given" in capsys.readouterr().err

    bad = tmp_path / "bad.yaml"
    bad.write_text("logs: []\nserver:\n  listen: nowhere\n")
    assert main(["check-config", "--json", str(bad)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert {(p["line"], p["path"]) for p in doc["problems"]} == {
        (1, "logs"),
        (3, "server.listen"),
    }


# -- what the reading commands need ------------------------------------------------------------

PRODUCTION = """\
trust:
  trusted_root: trust/trusted_root.json   # not there: reading the database does not need it
  signing_config: trust/signing_config.json
logs:
  - name: rekor
    api: v1
    url: https://rekor.sigstore.dev
database:
  url: sqlite+aiosqlite:///state/monitor.db   # beside this file, wherever it is read from
server:
  tokens:
    - name: soc
      sha256_env: SOC_TOKEN_SHA256
watch:
  - name: acme-release
    match: {san: "https://github.com/acme/*"}
    severity: high
alerts:
  sinks:
    - name: soc
      type: webhook
      url_env: SOC_WEBHOOK_URL
      secret_env: SOC_WEBHOOK_SECRET
    - name: pager
      type: pagerduty
      routing_key_env: PAGERDUTY_ROUTING_KEY
"""


async def _cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TLOG_MONITOR,
        *args,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},  # no secret of the file in the environment
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_reading_needs_only_the_database_section_relative_to_the_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "monitor.yaml"
    config.write_text(PRODUCTION)
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    relative = "../etc/monitor.yaml"  # as typed from elsewhere

    async def fill() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{etc / 'state' / 'monitor.db'}")
        try:
            await store.register_log("rekor", "v1", "https://rekor.sigstore.dev")
            r = cert_record("rekor", 7, sans=("https://github.com/acme/app",))
            f = finding_for(r, rule="acme-release")
            await store.store_batch(Batch("rekor", 8, records=(r,), findings=(f,)))
        finally:
            await store.close()

    run(fill)

    async def body() -> None:
        reads = [
            ("findings", "--config", relative, "--json"),
            ("history", "--config", relative, "--json", "--log", "rekor"),
            ("alerts", "dead", "--config", relative, "--sink", "pager"),
            ("db", "current", "--config", relative),
        ]
        results = await asyncio.gather(*(_cli(elsewhere, *argv) for argv in reads))
        for argv, (code, out, err) in zip(reads, results, strict=True):
            assert (code, err) == (0, ""), (argv, out)
        findings = json.loads(results[0][1])["items"]
        assert [f["index"] for f in findings] == [7]
        assert [e["index"] for e in json.loads(results[1][1])["items"]] == [7]
        assert results[2][1] == "no dead letters\n"
        # the daemon, which needs everything, still says what is missing
        code, _, err = await _cli(elsewhere, "check-config", relative)
        assert code == 2
        for name in ("SOC_WEBHOOK_SECRET", "PAGERDUTY_ROUTING_KEY", "SOC_TOKEN_SHA256"):
            assert name in err
        assert "trust/trusted_root.json: no such file" in err

    run(body)
    assert not (elsewhere / "state").exists()  # nothing made beside the caller


def test_a_database_password_from_the_environment_is_still_needed(tmp_path: Path) -> None:
    config = tmp_path / "pg.yaml"
    doc = yaml.safe_load(PRODUCTION)
    doc["database"] = {
        "url": "postgresql+asyncpg://monitor@127.0.0.1:5432/tlog",
        "password_env": "TLOG_DB_PASSWORD",
    }
    config.write_text(yaml.safe_dump(doc))
    code, out, err = run(lambda: _cli(tmp_path, "findings", "--config", str(config)))
    assert (code, out) == (2, "")
    # one problem: the database's; the sinks' missing secrets are none of its business
    assert err.startswith(f"tlog-monitor: error: {config}:")
    assert err.endswith(
        ": database.password_env: environment variable TLOG_DB_PASSWORD is not set\n"
    )
    assert err.count("\n") == 1
