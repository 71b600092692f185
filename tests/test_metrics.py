"""The metric contract: after a pass against the simulator over loopback, the exposition on
the monitor's registry holds every metric with the right values, passes ``promtool check
metrics``, and names no identity, digest or URL; a fork or a shrink moves the signed size but
not the verified one and takes the log down; lag in seconds is computed at scrape time."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.core.metrics import LogStatusCollector
from monitor.core.status import LogStatus
from monitor.daemon.context import PassResult
from monitor.daemon.service import Monitor
from tests.daemon_support import ARTIFACT, MALLORY, T0, Clock, until, write_config
from tests.simlog import Harness, harness, run

# every metric of the contract as exposed, but for the API's (the server adds those)
CONTRACT = (
    "tlog_monitor_fetch_requests_total",
    "tlog_monitor_fetch_retries_total",
    "tlog_monitor_fetch_failures_total",
    "tlog_monitor_rate_limit_wait_seconds_total",
    "tlog_monitor_fetch_latency_seconds",
    "tlog_monitor_entries_processed_total",
    "tlog_monitor_matches_total",
    "tlog_monitor_findings_total",
    "tlog_monitor_malformed_entries_total",
    "tlog_monitor_integrity_failures_total",
    "tlog_monitor_pass_errors_total",
    "tlog_monitor_batch_seconds",
    "tlog_monitor_checkpoint_tree_size",
    "tlog_monitor_verified_tree_size",
    "tlog_monitor_cursor",
    "tlog_monitor_lag_entries",
    "tlog_monitor_lag_seconds",
    "tlog_monitor_last_progress_timestamp_seconds",
    "tlog_monitor_last_checkpoint_timestamp_seconds",
    "tlog_monitor_last_success_timestamp_seconds",
    "tlog_monitor_log_up",
    "tlog_monitor_health_findings_open",
    "tlog_monitor_alert_messages_total",
    "tlog_monitor_alert_deliveries_total",
    "tlog_monitor_alert_failures_total",
    "tlog_monitor_outbox_depth",
    "tlog_monitor_outbox_oldest_age_seconds",
    "tlog_monitor_alert_sink_disabled",
    "tlog_monitor_alert_delivery_seconds",
    "tlog_monitor_db_operation_seconds",
    "tlog_monitor_build_info",
)
RUNTIME = ("process_cpu_seconds_total", "python_info", "python_gc_objects_collected_total")
GONE = ("tlog_monitor_alerts_delivered", "tlog_monitor_alert_backlog", "tlog_monitor_log_size")

Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by sample name."""
    out: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def value(got: Samples, name: str, **labels: str) -> float | None:
    found = [v for lab, v in got[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def total(got: Samples, name: str, **labels: str) -> float:
    return sum(v for lab, v in got[name] if all(lab.get(k) == x for k, x in labels.items()))


def exposition(m: Monitor) -> str:
    return generate_latest(m.registry).decode()


def promtool_problems(text: str) -> tuple[int, str]:
    """``promtool check metrics`` on the exposition: its exit code and what it printed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not installed (Debian: prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must lint the metrics", pytrace=False)
        pytest.skip(message)
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


async def plant(h: Harness, base: int) -> None:
    """Three entries of mallory (rule mallory, high) and one of the artifact (medium)."""
    for i in (3, 57, 101):
        await h.admin("plant", {"index": base + i, "identity": MALLORY})
    await h.admin("plant", {"index": base + 80, "digest": ARTIFACT})


@pytest.mark.slow
def test_a_pass_exports_the_whole_contract_with_the_right_values(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=1) as h:
            await plant(h, 200)
            await h.admin("append", {"v1": 150, "v2": 150})
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": 150, "batch_size": 32},
                v2={"start": 150, "batch_size": 32},
            )
            async with Monitor.open(str(cfg), registry=CollectorRegistry()) as m:
                results = await m.once()
                await m.evaluate_health()
                await m.deliver_pending(seconds=5.0)
                text = exposition(m)
                logs = sorted(m.runners)
                assert all(isinstance(r, PassResult) for r in results.values()), results

        got = samples(text)
        for name in CONTRACT + RUNTIME:
            assert f"# TYPE {name} " in text, name
        for name in GONE:
            assert name not in text

        (v2_name,) = [n for n in logs if n != "v1"]
        assert v2_name.startswith("v2@")
        for log in logs:
            processed = total(got, "tlog_monitor_entries_processed_total", log=log)
            assert processed == 200  # [150, 350)
            kinds = {lab["kind"] for lab, _ in got["tlog_monitor_entries_processed_total"]}
            assert kinds <= {"hashedrekord", "dsse", "intoto", "rekord", "unknown", "malformed"}
            for name in ("checkpoint_tree_size", "verified_tree_size", "cursor"):
                assert value(got, f"tlog_monitor_{name}", log=log) == 350, name
            assert value(got, "tlog_monitor_lag_entries", log=log) == 0
            assert value(got, "tlog_monitor_last_checkpoint_timestamp_seconds", log=log)
            assert value(got, "tlog_monitor_last_progress_timestamp_seconds", log=log)
            assert total(got, "tlog_monitor_batch_seconds_count", log=log) > 1
            assert total(got, "tlog_monitor_fetch_requests_total", log=log, status="200") > 0
            for metric in ("matches_total", "findings_total"):
                by_rule = {
                    (lab["rule"], lab["severity"]): v
                    for lab, v in got[f"tlog_monitor_{metric}"]
                    if lab["log"] == log
                }
                assert by_rule == {("mallory", "high"): 3, ("artifact", "medium"): 1}, metric
            assert {
                lab["kind"] for lab, _ in got["tlog_monitor_findings_total"] if lab["log"] == log
            } == {"watched_use"}
            assert value(got, "tlog_monitor_malformed_entries_total", log=log) == 0
            lie = value(
                got, "tlog_monitor_integrity_failures_total", log=log, type="consistency_failure"
            )
            assert lie == 0  # shown before anything happens, so that rates have a start

        # the sink's address is closed: the four findings (high, medium) failed, and wait
        assert total(got, "tlog_monitor_alert_deliveries_total", outcome="delivered") == 0
        assert value(got, "tlog_monitor_alert_deliveries_total", outcome="failed", sink="soc")
        assert value(got, "tlog_monitor_outbox_depth", sink="soc") == 2 * 4
        age = value(got, "tlog_monitor_outbox_oldest_age_seconds", sink="soc")
        assert age is not None
        assert 0 < age < 120
        assert value(got, "tlog_monitor_alert_sink_disabled", sink="soc") == 0
        assert total(got, "tlog_monitor_alert_failures_total", sink="soc") > 0

        operations = {lab["operation"] for lab, _ in got["tlog_monitor_db_operation_seconds_count"]}
        assert {"commit_batch", "log_state", "findings", "outbox_due", "outbox_mark"} <= operations
        assert value(got, "tlog_monitor_db_operation_seconds_count", operation="commit_batch")

        (build,) = got["tlog_monitor_build_info"]
        assert build[0]["version"] == __version__
        assert build[1] == 1

        # nothing said about who or what: no planted identity, digest or URL (a shard's
        # runner name holds its host, as a log name should; never a URL)
        assert "mallory@evil.example" not in text
        assert ARTIFACT not in text
        assert "://" not in text

        assert promtool_problems(text) == (0, "")

    run(body)


def test_promtool_catches_what_the_contract_forbids() -> None:
    """The lint is not a formality: a counter named without ``_total`` fails it."""
    bad = "# HELP tlog_monitor_oops Oops.\n# TYPE tlog_monitor_oops counter\ntlog_monitor_oops 1\n"
    code, printed = promtool_problems(bad)
    assert code != 0
    assert "_total" in printed


def test_a_lie_moves_the_signed_size_not_the_verified_one_and_takes_the_log_down(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    async def body() -> None:
        async with harness(tmp_path, entries=300, shards=1) as h:
            cfg = write_config(
                tmp_path / "monitor.yaml",
                h.sim,
                tmp_path,
                url,
                v1={"start": "tip"},
                v2={"start": "tip"},
            )
            async with Monitor.open(str(cfg), registry=CollectorRegistry(), retry_base=0.02) as m:
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                statuses = [r.status for r in m.runners.values()]

                def per_log(name: str) -> dict[str, float | None]:
                    got = samples(exposition(m))
                    return {log: value(got, name, log=log) for log in m.runners}

                await until(lambda: all(s.up() and s.cursor == 300 for s in statuses), m)
                assert set(per_log("tlog_monitor_lag_seconds").values()) == {0}
                assert set(per_log("tlog_monitor_log_up").values()) == {1}
                assert all(per_log("tlog_monitor_last_success_timestamp_seconds").values())
                assert set(per_log("tlog_monitor_checkpoint_tree_size").values()) == {300}
                assert set(per_log("tlog_monitor_verified_tree_size").values()) == {300}

                # a fork: a validly signed checkpoint of 320 whose tree differs from 290 on
                await h.admin("append", {"v1": 20, "v2": 20})
                await h.admin("faults", {"fork_at": 290})
                await until(lambda: all(s.lie == "consistency_failure" for s in statuses), m)
                assert set(per_log("tlog_monitor_checkpoint_tree_size").values()) == {320}
                assert set(per_log("tlog_monitor_verified_tree_size").values()) == {300}
                assert set(per_log("tlog_monitor_cursor").values()) == {300}
                assert set(per_log("tlog_monitor_lag_entries").values()) == {20}
                assert set(per_log("tlog_monitor_log_up").values()) == {0}
                assert all(v and v > 0 for v in per_log("tlog_monitor_lag_seconds").values())
                got = samples(exposition(m))
                for log in m.runners:
                    lies = value(
                        got,
                        "tlog_monitor_integrity_failures_total",
                        log=log,
                        type="consistency_failure",
                    )
                    assert lies is not None
                    assert lies >= 1
                    found = value(
                        got,
                        "tlog_monitor_findings_total",
                        log=log,
                        kind="integrity_failure",
                        rule="",
                        severity="critical",
                    )
                    assert found == 1  # retried, but stored once

                # a shrink below the verified tree: signed, smaller, a lie all the same
                await h.admin("faults", {"fork_at": None, "shrink_by": 30})
                await until(lambda: all(s.lie == "tree_shrunk" for s in statuses), m)
                assert set(per_log("tlog_monitor_checkpoint_tree_size").values()) == {290}
                assert set(per_log("tlog_monitor_verified_tree_size").values()) == {300}
                assert set(per_log("tlog_monitor_log_up").values()) == {0}

                # the log mends: everything proven again, the log is up, nothing behind
                await h.admin("faults", {"shrink_by": 0})
                await until(lambda: all(s.up() and s.cursor == 320 for s in statuses), m)
                assert set(per_log("tlog_monitor_checkpoint_tree_size").values()) == {320}
                assert set(per_log("tlog_monitor_verified_tree_size").values()) == {320}
                assert set(per_log("tlog_monitor_log_up").values()) == {1}
                assert set(per_log("tlog_monitor_lag_seconds").values()) == {0}
                stop.set()
                await asyncio.wait_for(task, 10)

    run(body)


def scrape(registry: CollectorRegistry, name: str, log: str) -> float | None:
    return registry.get_sample_value(f"tlog_monitor_{name}", {"log": log})


def test_lag_seconds_grows_while_behind_and_is_zero_when_caught_up() -> None:
    clock = Clock()
    statuses = [LogStatus("a", started_at=T0)]
    registry = CollectorRegistry()
    registry.register(LogStatusCollector(lambda: list(statuses), clock))
    a = statuses[0]

    # before any pass: behind since the start, and not up
    clock.advance(30)
    assert scrape(registry, "lag_seconds", "a") == 30
    assert scrape(registry, "log_up", "a") == 0
    assert scrape(registry, "last_success_timestamp_seconds", "a") is None

    a.record_pass(PassResult(100, 0, 100, 100), clock.advance(10))  # caught up at T0 + 40
    assert scrape(registry, "lag_seconds", "a") == 0
    assert scrape(registry, "log_up", "a") == 1
    assert scrape(registry, "last_success_timestamp_seconds", "a") == T0 + 40
    clock.advance(600)  # quiet, no pass since: still caught up as far as anyone knows
    assert scrape(registry, "lag_seconds", "a") == 0

    a.record_pass(PassResult(50, 0, 150, 400), clock.advance(5))  # the log grew faster
    assert scrape(registry, "lag_seconds", "a") == 605
    clock.advance(100)
    assert scrape(registry, "lag_seconds", "a") == 705  # grows between passes: at scrape time
    assert scrape(registry, "log_up", "a") == 1

    a.record_error(OSError("connection refused"), clock.advance(20))
    assert scrape(registry, "log_up", "a") == 0
    assert scrape(registry, "lag_seconds", "a") == 725

    a.record_pass(PassResult(250, 0, 400, 400), clock.advance(5))
    assert scrape(registry, "lag_seconds", "a") == 0
    assert scrape(registry, "log_up", "a") == 1

    # a runner added later (a new shard) is read at the next scrape, behind since it began
    statuses.append(LogStatus("b", started_at=clock.t))
    clock.advance(7)
    assert scrape(registry, "lag_seconds", "b") == 7
    assert scrape(registry, "lag_seconds", "a") == 0
