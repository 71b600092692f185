"""The daemon's commands as a user runs them, in child processes against the simulator over
loopback: ``once`` and ``backfill`` print one JSON document with ``--json``; an entry planted
in both logs has the same time in each; ``run`` says once that nobody is told when there are
no rules or sinks; an expected use is a record that reaches only a sink that asks for it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.alert_receivers import HOOK, Receiver, finding_keys
from tests.daemon_support import MALLORY, RULES, SINKS, write_config
from tests.simlog import harness, run

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")
SECRET = SINKS[0]["secret"]
PLANTED = 205  # in both logs
ACME = {"github": {"owner": "acme", "repo": "app"}}


async def cli(*args: str, timeout: float = 120.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TLOG_MONITOR, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
def test_once_and_backfill_json_and_one_time_for_both_logs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=2) as h:
            await h.admin("plant", {"index": PLANTED, "identity": MALLORY})
            await h.admin("append", {"v1": 20, "v2": 20})
            logs = {"start": 200}
            cfg = str(write_config(tmp_path / "m.yaml", h.sim, tmp_path, url, v1=logs, v2=logs))
            code, out, err = await cli("once", "--config", cfg, "--json")
            assert code == 1, err  # new findings
            doc = json.loads(out)
            assert doc["exit"] == 1
            assert doc["alerts_waiting"] == {"soc": 2}  # the sink is down: kept for later
            by_log = {entry["log"].split("@")[0]: entry for entry in doc["logs"]}
            assert set(by_log) == {"v1", "v2"}
            for entry in by_log.values():
                assert (entry["ok"], entry["entries"], entry["new_findings"]) == (True, 20, 1)
                assert (entry["cursor"], entry["integrity_failure"]) == (220, None)

            # the planted entry's time is the same in both logs (Rekor v2 has no integrated
            # time: the monitor dates an entry when it stores it)
            code, out, err = await cli(
                "history", "--config", cfg, "--json", "--san", MALLORY["email"]
            )
            assert code == 0, err
            times = {item["log"].split("@")[0]: item["time"] for item in json.loads(out)["items"]}
            assert set(times) == {"v1", "v2"}
            assert abs(times["v1"] - times["v2"]) <= 30, times
            assert abs(times["v1"] - time.time()) <= 120, times

            code, out, err = await cli(
                "backfill", "--config", cfg, "--log", "v1", "--from", "10", "--to", "30", "--json"
            )
            assert code == 0, err  # nothing of ours in that range
            doc = json.loads(out)
            assert (doc["log"], doc["from"], doc["to"], doc["exit"]) == ("v1", 10, 30, 0)
            assert (doc["entries"], doc["new_findings"], doc["cursor"]) == (20, 0, 30)
            code, out, err = await cli("history", "--config", cfg, "--json", "--log", "v1")
            (searched,) = json.loads(out)["searched"]
            assert (searched["from_index"], searched["to_index"]) == (200, 219)
            assert searched["backfilled"] == [{"from_index": 10, "to_index": 29}]

    run(body)


@pytest.mark.slow
def test_run_warns_once_when_nobody_is_told(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=50, shards=1) as h:
            cfg = write_config(tmp_path / "m.yaml", h.sim, tmp_path, url, rules=[], sinks=[])
            proc = await asyncio.create_subprocess_exec(
                TLOG_MONITOR,
                "run",
                "--config",
                str(cfg),
                "--log-format",
                "json",
                stderr=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )
            assert proc.stderr is not None
            lines: list[dict[str, Any]] = []
            try:
                deadline = time.monotonic() + 60
                while not any(x["message"].startswith("no alert sinks") for x in lines):
                    left = deadline - time.monotonic()
                    raw = await asyncio.wait_for(proc.stderr.readline(), max(left, 0.1))
                    assert raw, "the daemon ended"
                    lines.append(json.loads(raw))
                await asyncio.sleep(2)  # passes go on; the warnings are not repeated
            finally:
                proc.send_signal(signal.SIGTERM)
                _, rest = await asyncio.wait_for(proc.communicate(), 30)
            lines += [json.loads(x) for x in rest.decode().splitlines()]
            warnings = [x["message"] for x in lines if x["level"] == "warning"]
            assert sum(w.startswith("no watch rules:") for w in warnings) == 1, warnings
            assert sum(w.startswith("no alert sinks:") for w in warnings) == 1, warnings
            assert proc.returncode == 0

    run(body)


@pytest.mark.slow
def test_an_expected_use_is_a_record_that_reaches_only_a_sink_asking_for_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    rules = [
        {  # acme's releases: signed as expected, each a record, announced to "releases"
            "name": "acme-release",
            "match": {"extensions": {"source-repository-owner-uri": "https://github.com/acme"}},
            "expect": {"issuer": "https://token.actions.githubusercontent.com"},
            "severity": "high",
            "alert_expected_use": True,
        },
        RULES[0],  # mallory: a surprise, for every sink without a kinds filter
    ]

    async def body() -> None:
        async with Receiver(secret=SECRET) as soc, Receiver(secret=SECRET) as releases:
            sinks = [
                {"name": "soc", "type": "webhook", "url": soc.url(HOOK), "secret": SECRET},
                {
                    "name": "releases",
                    "type": "webhook",
                    "url": releases.url(HOOK),
                    "secret": SECRET,
                    "kinds": ["expected_use"],
                    "min_severity": "info",
                },
            ]
            for sink in sinks:
                sink["group_window"] = "0s"
            async with harness(tmp_path, entries=200, shards=2) as h:
                await h.admin("plant", {"index": PLANTED, "identity": ACME})
                await h.admin("plant", {"index": PLANTED + 1, "identity": MALLORY})
                await h.admin("append", {"v1": 20, "v2": 20})
                logs = {"start": 200}
                cfg = str(
                    write_config(
                        tmp_path / "m.yaml",
                        h.sim,
                        tmp_path,
                        url,
                        v1=logs,
                        v2=logs,
                        rules=rules,
                        sinks=sinks,
                    )
                )
                code, _, err = await cli("once", "--config", cfg)
                assert code == 1, err
            # the triage queue holds the surprises only
            code, out, err = await cli(
                "findings", "--config", cfg, "--json", "--state", "open", "--severity", "high"
            )
            assert code == 0, err
            queue = json.loads(out)["items"]
            assert {(f["rule"], f["kind"]) for f in queue} == {("mallory", "watched_use")}
            code, out, err = await cli(
                "findings", "--config", cfg, "--json", "--kind", "expected_use"
            )
            records = json.loads(out)["items"]
            assert len(records) == 2  # one in each log
            assert {(f["rule"], f["state"]) for f in records} == {("acme-release", "recorded")}
            # a sink without kinds: the surprises only; the sink listing expected_use: records
            kinds = {"soc": finding_keys(soc.at(HOOK)), "releases": finding_keys(releases.at(HOOK))}
            assert set(kinds["soc"]) == {f["dedup_key"] for f in queue}
            assert set(kinds["releases"]) == {f["dedup_key"] for f in records}

    run(body)
