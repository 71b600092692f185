"""A real Prometheus scrapes a real daemon: ``tlog-monitor run`` tails the simulator and serves
/metrics behind a bearer token; Prometheus, configured from the example prometheus.yml with
the shipped alerting rules, scrapes it every second. Then every query of the Grafana dashboard
and every rule expression is evaluated by that Prometheus (none may be refused), the
dashboard's variables find the configured logs and sinks, and the rule groups are healthy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml

from tests.daemon_support import MALLORY, write_config
from tests.prometheus_support import (
    JOB,
    Prometheus,
    alert_rules,
    dashboard,
    dashboard_exprs,
    exposed_types,
    free_port,
    metric_names,
    require_tool,
    running_prometheus,
    stop_process,
    to_promql,
    unknown_names,
    variable_queries,
)
from tests.simlog import Harness, harness, run

T = TypeVar("T")

TLOG_MONITOR = str(Path(sys.executable).parent / "tlog-monitor")
# panels that must show data once the daemon has caught up once (the others may be empty:
# no failures, no findings delivered, ...)
MUST_HAVE_DATA = (
    "Logs up",
    "Entries behind",
    "Throughput",
    "Checkpoint vs verified tree size",
    "Requests by status",
    "Rate limited (429)",
    "Error ratio",
    "Version",
    "Memory",
)


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str, timeout: float = 60.0
) -> T:
    """``probe()`` until ``ok`` holds of its answer; fails after ``timeout`` with the last."""
    deadline = time.monotonic() + timeout
    while True:
        got = await probe()
        if ok(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {got!r}")
        await asyncio.sleep(0.5)


def daemon_config(tmp_path: Path, h: Harness, listen: str, token: str) -> Path:
    logs = {"start": 0, "batch_size": 50}
    path = write_config(
        tmp_path / "monitor.yaml",
        h.sim,
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}",
        v1=logs,
        v2=logs,
    )
    doc = yaml.safe_load(path.read_text())
    digest = hashlib.sha256(token.encode()).hexdigest()
    doc["server"] = {
        "listen": listen,
        "tokens": [{"name": "prom", "sha256": digest, "scopes": ["read"]}],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def get_metrics(session: aiohttp.ClientSession, url: str, token: str | None) -> str | int:
    """The exposition, or the status when it is refused (or the connection, as 0)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        async with session.get(url, headers=headers) as resp:
            if resp.status != 200:
                return resp.status
            return await resp.text()
    except aiohttp.ClientError:
        return 0


@contextlib.asynccontextmanager
async def running_daemon(config: Path, log_path: Path) -> AsyncIterator[None]:
    """``tlog-monitor run`` as a user starts it, stopped with SIGTERM at the end."""
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            TLOG_MONITOR,
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        yield
    except BaseException:
        await stop_process(proc)
        print(log_path.read_text()[-5000:])  # pytest shows it with the failure
        raise
    else:
        await stop_process(proc)


@pytest.mark.slow
def test_prometheus_scrapes_the_daemon_and_evaluates_every_query(tmp_path: Path) -> None:
    require_tool("prometheus")
    token = secrets.token_urlsafe(32)
    listen = f"127.0.0.1:{free_port()}"
    metrics_url = f"http://{listen}/metrics"

    async def body() -> None:
        async with harness(tmp_path, entries=200, shards=2) as h:
            # a finding to deliver: its sink refuses connections, so delivery fails too
            await h.admin("plant", {"index": 210, "identity": MALLORY})
            await h.admin("append", {"v1": 40, "v2": 40})
            cfg = daemon_config(tmp_path, h, listen, token)
            async with running_daemon(cfg, tmp_path / "daemon.log"):
                exposition = await eventually(
                    lambda: get_metrics(h.session, metrics_url, token),
                    lambda got: isinstance(got, str),
                    f"GET {metrics_url} with the bearer token",
                    timeout=30,
                )
                assert isinstance(exposition, str)
                assert await get_metrics(h.session, metrics_url, None) == 401
                assert await get_metrics(h.session, metrics_url, "wrong") == 401
                check_names(exposition)
                async with running_prometheus(
                    tmp_path / "prometheus", h.session, target=listen, token=token
                ) as prom:
                    await check_prometheus(prom)

    run(body)


def check_names(exposition: str) -> None:
    """What the running daemon serves has every metric the dashboard and rules use."""
    types = exposed_types(exposition)
    doc = dashboard()
    used = metric_names(
        "\n".join(
            [
                *(e for _, e in dashboard_exprs(doc)),
                *variable_queries(doc).values(),
                *(r["expr"] for r in alert_rules()),
            ]
        )
    )
    assert sorted(unknown_names(used, types)) == []


async def check_prometheus(prom: Prometheus) -> None:
    await eventually(
        lambda: prom.values("sum(tlog_monitor_entries_processed_total)"),
        lambda v: bool(v) and v[0] > 0,
        "entries processed, as scraped",
    )
    assert await prom.values(f'up{{job="{JOB}"}}') == [1.0]

    # the dashboard's variables find the configured logs and sinks
    for name, query in variable_queries(dashboard()).items():
        metric, label = query.removeprefix("label_values(").removesuffix(")").split(", ")
        body = await prom.api(f"/api/v1/label/{label}/values", **{"match[]": metric})
        assert body["status"] == "success", (name, body)
        expected = {"log": {"v1"}, "sink": {"soc"}}[name]
        assert expected <= set(body["data"]), (name, body["data"])

    # every query is valid PromQL, as Prometheus itself parses and runs it (a broken one
    # would be refused)
    assert (await prom.query("sum(tlog_monitor_cursor"))["status"] == "error"
    refused: list[tuple[str, str, Any]] = []
    exprs = [(f"panel {t!r}", to_promql(e)) for t, e in dashboard_exprs(dashboard())]
    exprs += [(f"rule {r['alert']}", r["expr"]) for r in alert_rules()]
    for where, expr in exprs:
        body = await prom.query(expr)
        if body["status"] != "success":
            refused.append((where, expr, body.get("error")))
    assert refused == []

    # and the main panels show the daemon's data (rates need two scrapes: wait for them)
    by_title: dict[str, list[str]] = {}
    for title, expr in dashboard_exprs(dashboard()):
        by_title.setdefault(title, []).append(to_promql(expr))
    for title in MUST_HAVE_DATA:
        for expr in by_title[title]:
            await eventually(lambda e=expr: prom.values(e), bool, f"data for {title}: {expr}")  # type: ignore[misc]

    # the rule groups are loaded and evaluate without error
    groups = {r["group"] for r in alert_rules()}

    async def rule_health() -> dict[str, str]:
        body = await prom.api("/api/v1/rules")
        assert body["status"] == "success", body
        return {
            f"{g['name']}/{r['name']}/{r.get('labels', {}).get('reason', '')}": r["health"]
            + (f": {r['lastError']}" if r.get("lastError") else "")
            for g in body["data"]["groups"]
            for r in g["rules"]
        }

    health = await eventually(
        rule_health, lambda h: bool(h) and "unknown" not in h.values(), "rules evaluated", 30
    )
    assert {key.split("/")[0] for key in health} == groups
    assert len(health) == len(alert_rules())
    assert {k: v for k, v in health.items() if v != "ok"} == {}

    # a scraped, healthy daemon: not down, and no log was caught lying
    body = await prom.api("/api/v1/alerts")
    names = {a["labels"]["alertname"] for a in body["data"]["alerts"]}
    assert not names & {"TlogMonitorDown", "TlogMonitorIntegrityFailure"}, body
