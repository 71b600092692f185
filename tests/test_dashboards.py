"""The shipped Grafana dashboard, Prometheus alerting rules and example Prometheus config:
promtool accepts the rules and the config and their unit tests pass; the dashboard is
importable Grafana JSON; and every metric either uses is one the daemon exports, read from a
real monitor's registry after a pass against the simulator."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.daemon.service import Monitor
from tests.daemon_support import write_config
from tests.prometheus_support import (
    ALERTS,
    ALERTS_TEST,
    JOB,
    PROMETHEUS_YML,
    RULES_DIR,
    alert_rules,
    alert_tests,
    dashboard,
    dashboard_exprs,
    exposed_types,
    metric_names,
    panels,
    require_tool,
    to_promql,
    unknown_names,
    used_metric_names,
    variable_queries,
)
from tests.simlog import harness, run

DS_REF = {"type": "prometheus", "uid": "${datasource}"}
ALERT_NAMES = {
    "TlogMonitorDown",
    "TlogMonitorLogStalled",
    "TlogMonitorLogUnreachable",
    "TlogMonitorLagHigh",
    "TlogMonitorIntegrityFailure",
    "TlogMonitorSinkFailing",
    "TlogMonitorMalformedEntries",
    "TlogMonitorHealthFinding",
    "TlogMonitorLogLeaderless",
    "TlogMonitorBatchFenced",
    "TlogMonitorVantageUnchecked",
    "TlogMonitorImagesUnchecked",
}
# Grafana's unit ids this dashboard may use (a typo shows raw numbers, silently)
UNITS = {"s", "short", "bytes", "reqps", "ops", "cps", "percentunit", "none"}


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    binary = require_tool("promtool")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# ----------------------------------------------------------------------------- promtool


def test_a_missing_tool_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_tool("promtool")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_tool("promtool")


def test_promtool_checks_the_rules() -> None:
    out = promtool("check", "rules", ALERTS.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_rule_unit_tests_pass() -> None:
    out = promtool("test", "rules", ALERTS_TEST.name)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_a_broken_rule_fails_its_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: the integrity rule without its clause for new series misses
    the first failure of a log."""
    rules = ALERTS.read_text()
    clause = re.compile(r"\s+or \(tlog_monitor_integrity_failures_total > 0\s+unless [^)]*\)")
    broken, n = clause.subn("", rules)
    assert n == 1
    (tmp_path / ALERTS.name).write_text(broken)
    shutil.copy(ALERTS_TEST, tmp_path)
    out = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert out.returncode != 0
    assert "the first failure of a new series fires too" in out.stdout + out.stderr


def test_a_leaderless_rule_without_its_delay_fails_its_unit_tests(tmp_path: Path) -> None:
    """A hand-over leaves a log without a leader for a moment: without `for`, the rule would
    fire on it, and the unit tests say so."""
    rules = ALERTS.read_text()
    delay = re.compile(
        r"(expr: max by \(job, log\) \(tlog_monitor_log_leader\) == 0\n)\s+for: 2m\n"
    )
    broken, n = delay.subn(r"\1", rules)
    assert n == 1
    (tmp_path / ALERTS.name).write_text(broken)
    shutil.copy(ALERTS_TEST, tmp_path)
    out = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert out.returncode != 0
    assert "a leader change with a gap under 2 minutes does not fire" in out.stdout + out.stderr


def test_example_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    doc = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == JOB]
    assert job["metrics_path"] == "/metrics"
    credentials = job["authorization"]["credentials_file"]
    assert not Path(credentials).is_absolute()  # beside the config, wherever it is installed
    assert doc["rule_files"] == [ALERTS.name]
    # the copy needs the files it names: the rules beside it, and a token
    shutil.copy(PROMETHEUS_YML, tmp_path)
    shutil.copy(ALERTS, tmp_path)
    (tmp_path / credentials).write_text("not-a-real-token")
    out = promtool("check", "config", PROMETHEUS_YML.name, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


# ----------------------------------------------------------------------------- the rules


def test_every_alert_has_severity_and_explained_annotations() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERT_NAMES
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        notes = rule["annotations"]
        for key in ("summary", "description", "runbook"):
            assert len(notes.get(key, "")) > 20, (name, key)
    # one alert name may have several rules (one per cause): each says which
    for name in ALERT_NAMES:
        same = [r for r in rules if r["alert"] == name]
        if len(same) > 1:
            reasons = [r["labels"].get("reason") for r in same]
            assert None not in reasons, name
            assert len(set(reasons)) == len(reasons), name
    # a proven lie pages at once, whatever else
    (integrity,) = [r for r in rules if r["alert"] == "TlogMonitorIntegrityFailure"]
    assert "for" not in integrity
    assert integrity["labels"]["severity"] == "critical"
    # a log no replica reads is nobody watching it; a takeover takes one lease_ttl (10 s)
    (leaderless,) = [r for r in rules if r["alert"] == "TlogMonitorLogLeaderless"]
    assert leaderless["expr"] == "max by (job, log) (tlog_monitor_log_leader) == 0"
    assert (leaderless["for"], leaderless["labels"]["severity"]) == ("2m", "critical")


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    fired: set[tuple[str, str | None]] = set()
    quiet: set[str] = set()
    for test in alert_tests():
        for case in test.get("alert_rule_test", []):
            if case["exp_alerts"]:
                fired |= {
                    (case["alertname"], a["exp_labels"].get("reason")) for a in case["exp_alerts"]
                }
            else:
                quiet.add(case["alertname"])
    rules = {(r["alert"], r["labels"].get("reason")) for r in alert_rules()}
    assert rules - fired == set(), "rules never seen firing"
    assert ALERT_NAMES - quiet == set(), "alerts never checked quiet"


# ----------------------------------------------------------------------------- the dashboard


def test_dashboard_is_importable_grafana_json() -> None:
    doc = dashboard()
    assert doc["schemaVersion"] == 39
    assert doc["uid"] == "tlog-monitor"
    assert doc["id"] is None  # a new dashboard wherever it is imported
    (ds_input,) = doc["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS"
    assert (ds_input["type"], ds_input["pluginId"]) == ("datasource", "prometheus")
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    assert variable_queries(doc) == {
        "log": "label_values(tlog_monitor_cursor, log)",
        "sink": "label_values(tlog_monitor_outbox_depth, sink)",
    }
    for name in ("log", "sink"):
        assert variables[name]["datasource"] == DS_REF
        assert variables[name]["includeAll"]
        assert variables[name]["allValue"] == ".*"


def test_dashboard_panels_are_well_formed() -> None:
    doc = dashboard()
    every = list(panels(doc))
    ids = [p["id"] for p in every]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in every:
        title = panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] >= 0, title
        assert pos["x"] + pos["w"] <= 24, title
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{title} overlaps {cells[(x, y)]}"
                cells[(x, y)] = title
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DS_REF, title
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, title
        assert panel.get("description"), title
        targets = panel["targets"]
        assert targets, title
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in targets:
            assert target["datasource"] == DS_REF, title
            assert target["expr"].strip(), title
    titles = [p["title"] for p in every if p["type"] == "row"]
    assert titles == [
        "Overview",
        "Progress",
        "Log requests",
        "Findings",
        "Alert delivery",
        "Database and API",
        "High availability",
        "Witnesses",
        "Container images",
        "Process",
    ]


def test_dashboard_exprs_use_only_known_variables_and_select_by_them() -> None:
    for title, expr in dashboard_exprs(dashboard()):
        assert "$" not in to_promql(expr), (title, expr)
        # a per-log or per-sink metric follows the dashboard's selection
        names = metric_names(expr)
        if any(n.startswith(("tlog_monitor_fetch_", "tlog_monitor_lag_")) for n in names):
            assert 'log=~"$log"' in expr, (title, expr)
        if any(n.startswith(("tlog_monitor_outbox_", "tlog_monitor_alert_")) for n in names):
            assert 'sink=~"$sink"' in expr, (title, expr)


def test_dashboard_shows_what_the_brief_asks() -> None:
    exprs = "\n".join(e for _, e in dashboard_exprs(dashboard()))
    for needle in (
        "tlog_monitor_lag_entries",
        "tlog_monitor_lag_seconds",
        "sum by (log, kind) (rate(tlog_monitor_entries_processed_total",
        "time() - tlog_monitor_last_checkpoint_timestamp_seconds",
        "tlog_monitor_checkpoint_tree_size",
        "tlog_monitor_verified_tree_size",
        "sum by (log, status) (rate(tlog_monitor_fetch_requests_total",
        'status="429"',
        "histogram_quantile(0.5, sum by (log, le) (rate(tlog_monitor_fetch_latency_seconds_bucket",
        "histogram_quantile(0.95, sum by (log, le) (rate(tlog_monitor_fetch_latency_seconds_bucket",
        "sum by (severity) (increase(tlog_monitor_findings_total",
        "sum by (rule, kind) (increase(tlog_monitor_findings_total",
        "tlog_monitor_matches_total",
        "sum by (log, type) (increase(tlog_monitor_integrity_failures_total",
        "tlog_monitor_malformed_entries_total",
        "tlog_monitor_health_findings_open",
        "sum by (sink, outcome) (increase(tlog_monitor_alert_deliveries_total",
        "sum by (sink, reason) (increase(tlog_monitor_alert_failures_total",
        "tlog_monitor_outbox_depth",
        "tlog_monitor_outbox_oldest_age_seconds",
        "tlog_monitor_alert_sink_disabled",
        "tlog_monitor_alert_delivery_seconds_bucket",
        "tlog_monitor_db_operation_seconds_bucket",
        "tlog_monitor_build_info",
        # which replica leads each log, a log none leads, and how leadership moves
        'max by (log, replica, instance) (tlog_monitor_log_leader{log=~"$log"}) == 1',
        'count(max by (log) (tlog_monitor_log_leader{log=~"$log"}) == 0)',
        "sum by (log, change) (increase(tlog_monitor_leadership_changes_total",
        "sum by (log, instance) (increase(tlog_monitor_fenced_batches_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert needle in exprs, needle


# ----------------------------------------------------------------------------- names


def test_unknown_names_reads_suffixes_by_type() -> None:
    types = {"a_total": "counter", "h": "histogram", "g": "gauge", "b_info": "gauge"}
    ok = {"a_total", "h_bucket", "h_count", "h_sum", "g", "b_info"}
    assert unknown_names(ok, types) == set()
    bad = {"a", "h", "g_bucket", "a_total_sum", "g_count", "missing"}
    assert unknown_names(bad, types) == bad


def daemon_exposition(tmp_path: Path) -> str:
    """The text a monitor's registry exposes after one pass of both simulated logs, and a
    moment of ``run`` (which serves the API, and so registers the API's metrics too)."""
    registry = CollectorRegistry()

    async def body() -> None:
        async with harness(tmp_path, entries=120, shards=2) as h:
            logs: dict[str, Any] = {"start": 0, "batch_size": 50}
            cfg = write_config(
                tmp_path / "monitor.yaml", h.sim, tmp_path, _db(tmp_path), v1=logs, v2=logs
            )
            async with Monitor.open(str(cfg), registry=registry) as m:
                results = await m.once()
                assert all(getattr(r, "cursor", None) == 120 for r in results.values()), results
                stop = asyncio.Event()
                task = asyncio.create_task(m.run(stop))
                deadline = time.monotonic() + 30
                while (m.api is None or m.api.url is None) and not task.done():
                    assert time.monotonic() < deadline, "the API did not start"
                    await asyncio.sleep(0.05)
                stop.set()
                await asyncio.wait_for(task, 30)

    run(body)
    return generate_latest(registry).decode()


def _db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    return daemon_exposition(tmp_path_factory.mktemp("exposition"))


def test_every_metric_used_is_exported_by_the_daemon(exposition: str) -> None:
    types = exposed_types(exposition)
    missing = {
        where: sorted(unknown_names(names, types))
        for where, names in used_metric_names().items()
        if unknown_names(names, types)
    }
    assert missing == {}, f"used but not exported: {missing}"


# High availability (issue 19): the rules and the dashboard use these, so every monitor's
# registry has them, a single-node one's too (without series: it leads no log by lease).
LEADERSHIP_METRICS = {
    "tlog_monitor_log_leader": "gauge",
    "tlog_monitor_leadership_changes_total": "counter",
    "tlog_monitor_fenced_batches_total": "counter",
}


def test_the_leadership_metrics_are_exported(exposition: str) -> None:
    types = exposed_types(exposition)
    assert {n: types.get(n) for n in LEADERSHIP_METRICS} == LEADERSHIP_METRICS


def test_the_dashboard_shows_every_metric_the_daemon_exports(exposition: str) -> None:
    """A metric added to the daemon gets a panel (or this test names it)."""
    shown = used_metric_names()["dashboard"]
    ours = {
        name
        for name in exposed_types(exposition)
        if name.startswith("tlog_monitor_") and not name.endswith("_created")  # start times
    }
    not_shown = sorted(
        name
        for name in ours
        if name not in shown and not any(name + s in shown for s in ("_bucket", "_count"))
    )
    assert not_shown == []
